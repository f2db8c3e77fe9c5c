"""The `bench` command line: `bench run`, `bench list`.

Usage errors and bad input print one line and exit with code 2, no traceback.
Only what argparse needs is imported at module level, so `--help` costs no torch,
pandas, rich or Ray, and a usage error only rich; each command imports what it uses.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from bench.errors import BenchError
from bench.files import RunLock, check_output_file, check_output_folder

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from bench.protocols import Protocol

DEFAULT_PROTOCOL = "phantom-quick"
DEFAULT_METHODS = "baseline,loss-refurb"
DEFAULT_NOISE = "systematic:0.5"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise BenchError(f"{message} (see: {self.prog} --help)")


def split_noise_list(text: str) -> list[str]:
    """Split `systematic:0.5,random:0.25,max_mm=6` into specs: a `key=value` item belongs to the spec before it."""
    specs: list[str] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            raise BenchError(f"empty item in noise list '{text}'")
        if "=" in item and ":" not in item:
            if not specs:
                raise BenchError(f"noise list '{text}' starts with a parameter; use TYPE:LEVEL[,key=value...]")
            specs[-1] += "," + item
        else:
            specs.append(item)
    return specs


#: seeds are 32-bit (numpy's and Python's seeding take them whole) and a run has at most this many
MAX_SEED = 2**32 - 1
MAX_SEEDS = 1000
#: `bench data show` draws at most this many images
MAX_SHOWN = 64


def _csv(text: str, what: str) -> list[str]:
    """The items of a comma list, each kept as typed (stripped); an empty item is refused, never dropped."""
    items = [s.strip() for s in text.split(",")]
    if not all(items):
        raise BenchError(f"{what} '{text}' has an empty item; write a comma list such as a,b")
    return items


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(s) for s in _csv(text, what)]
    except ValueError:
        raise BenchError(f"{what} must be integers, got '{text}'") from None


def _seed_list(args: argparse.Namespace, default: tuple[int, ...]) -> list[int]:
    """The run's seeds from --seed (a list) or --seeds (a count), each in 0..MAX_SEED."""
    if args.seeds is not None:
        counts = _int_list(args.seeds, "--seeds")
        if len(counts) != 1:
            raise BenchError(f"--seeds takes one count N (seeds 0..N-1), got '{args.seeds}'; for given seeds use --seed {args.seeds}")
        if not 1 <= counts[0] <= MAX_SEEDS:
            raise BenchError(f"--seeds must be between 1 and {MAX_SEEDS}, got {counts[0]}")
        return list(range(counts[0]))
    seeds = _int_list(args.seed, "--seed") if args.seed is not None else list(default)
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise BenchError(f"seeds must be integers in 0..{MAX_SEED}, got {bad[0]}")
    if len(seeds) > MAX_SEEDS:
        raise BenchError(f"at most {MAX_SEEDS} seeds per run, got {len(seeds)}")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="bench", description="Benchmark segmentation methods under noisy ground truth (CAMUS echo).", allow_abbrev=False)
    # allow_abbrev=False everywhere: --meth is an unknown option, never silently taken for --method
    sub = parser.add_subparsers(dest="command", required=True, parser_class=functools.partial(_Parser, allow_abbrev=False))

    run = sub.add_parser("run", help="run a grid of trials (methods x noise specs x seeds) under Ray Tune")
    run.add_argument("--protocol", default=DEFAULT_PROTOCOL, help=f"protocol name (default {DEFAULT_PROTOCOL}; see: bench list protocols)")
    run.add_argument("--method", default=DEFAULT_METHODS, help=f"comma list of methods (default {DEFAULT_METHODS})")
    run.add_argument(
        "--noise",
        action="append",
        help="noise specs TYPE:LEVEL[,key=value...] or none, comma list or repeated; "
        f"'protocol' = the protocol's grid (default {DEFAULT_NOISE})",
    )
    seeds = run.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=str, help="number of seeds N: seeds 0..N-1 (default: the protocol's seeds)")
    seeds.add_argument("--seed", type=str, help="explicit seeds, comma list (e.g. 3 or 0,4)")
    run.add_argument("--out", type=Path, default=Path("results"), help="where records are written (default ./results)")
    run.add_argument("--data-root", type=Path, default=None, help="local copy of a dataset that reads files (CAMUS)")
    run.add_argument("--cpus-per-trial", type=int, default=1, help="CPU cores per trial; torch threads follow it (default 1)")
    run.add_argument("--max-concurrent", type=int, default=None, help="at most this many trials at once (default: as CPUs allow)")
    run.add_argument(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        help="GPUs per trial, may be fractional (default 0: train on the CPU); > 0 trains on the GPU Ray assigns",
    )
    run.add_argument("--address", default=None, help="run on an existing Ray cluster at HOST:PORT (default: start a local Ray)")
    run.add_argument(
        "--storage",
        default=None,
        help="Ray Tune's experiment folder or URI (default <out>/_tune); with --address on several nodes it must be shared by all",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run: skip cells that already have an ok record of the same protocol hash under --out",
    )

    noise = sub.add_parser("noise", help="look at a noise model: bench noise show SPEC")
    noise_sub = noise.add_subparsers(dest="noise_command", required=True, parser_class=functools.partial(_Parser, allow_abbrev=False))
    show = noise_sub.add_parser("show", help="draw clean and noisy contours side by side for a few training samples (PNG)")
    show.add_argument("spec", help="noise spec TYPE:LEVEL[,key=value...] (see README, Noise models)")
    show.add_argument("--dataset", default="echo-phantom", help="dataset name (default echo-phantom, 12 patients)")
    show.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    show.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    show.add_argument("--out", type=Path, default=Path("noise.png"), help="PNG file to write (default ./noise.png)")

    data = sub.add_parser("data", help="look at a dataset: bench data show NAME")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=functools.partial(_Parser, allow_abbrev=False))
    dshow = data_sub.add_parser("show", help="draw a grid of example images with their label contours (PNG)")
    dshow.add_argument("name", help="dataset name (see: bench list datasets)")
    dshow.add_argument("--data-root", type=Path, default=None, help="local copy of a dataset that reads files (CAMUS)")
    dshow.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    dshow.add_argument("--count", type=int, default=12, help="number of images (default 12)")
    dshow.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dataset option, repeatable, e.g. generator=3 for the echo phantom's harder generator",
    )
    dshow.add_argument("--out", type=Path, default=Path("data.png"), help="PNG file to write (default ./data.png)")

    leader = sub.add_parser("leaderboard", help="aggregate result records into a board: table, md, csv, html or latex")
    leader.add_argument("paths", nargs="*", type=Path, help="folders (searched for *.json) or record files (default: leaderboard/)")
    leader.add_argument("--protocol", default=None, help="only this protocol: NAME or NAME@VERSION (default: all, never pooled)")
    leader.add_argument(
        "--format",
        choices=("table", "md", "csv", "html", "latex"),
        default=None,
        help="output format (default: from the --out suffix .md/.csv/.html/.tex, else table)",
    )
    leader.add_argument("--out", type=Path, default=None, help="write the board to this file, atomically (default: print to stdout)")
    leader.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out records that bench validate rejects (each named on stderr) instead of refusing the board",
    )
    leader.add_argument(
        "--index",
        action="store_true",
        help="instead of a board: a page listing every <protocol>/v<N>/board.html under the first path (default --out PATH/index.html)",
    )

    audit = sub.add_parser("audit", help="find the label errors of a dataset: cross-fitted U-Nets score every case (see README)")
    audit.add_argument("dataset", help="dataset name: nnunet (your nnU-Net v2 raw folder), camus or echo-phantom")
    audit.add_argument("--data-root", type=Path, default=None, help="the dataset's folder (nnunet: the one with dataset.json; camus)")
    audit.add_argument(
        "--detector",
        default="loss,confident,softmin",
        help="comma list of out-of-sample detectors (default loss,confident,softmin; also dice, entropy)",
    )
    audit.add_argument("--folds", type=int, default=3, help="K of the cross-fitting, grouped by patient (default 3)")
    audit.add_argument("--size", type=int, default=96, help="working image side in pixels (default 96)")
    audit.add_argument("--epochs", type=int, default=12, help="training epochs of each fold model (default 12)")
    audit.add_argument("--seed", type=int, default=0, help="seed of the folds, the models and --inject (default 0)")
    audit.add_argument(
        "--out", type=Path, default=Path("audit"), help="output folder (default ./audit); the dataset folder is never written"
    )
    audit.add_argument(
        "--top", type=int, default=20, help="review budget N: cases shown in the report and given proposed labels (default 20)"
    )
    audit.add_argument(
        "--inject", default=None, metavar="SPEC", help="corrupt a copy of the labels first (a noise spec) and measure detection"
    )
    audit.add_argument("--resume", action="store_true", help="keep the finished folds of an interrupted audit in --out")
    audit.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="a dataset option, repeatable (nnunet: patient=REGEX)"
    )

    lister = sub.add_parser("list", help="list what is registered")
    lister.add_argument("kind", nargs="?", default="all", choices=[*LIST_KINDS, "all"], help="what to list (default all)")

    validate = sub.add_parser(
        "validate", help="check result records: schema, protocol hash, duplicates, impossible values, dataset fingerprints vs the data"
    )
    validate.add_argument(
        "paths", nargs="+", type=Path, help="record files or folders (searched for *.json; _tune and dot folders skipped)"
    )
    validate.add_argument(
        "--data-root", type=Path, default=None, help="local copy of a dataset that reads files (CAMUS), to check its fingerprints"
    )
    return parser


def _registries() -> dict[str, object]:
    import bench

    return {
        "methods": bench.methods,
        "protocols": bench.protocols,
        "datasets": bench.datasets,
        "noise": bench.noises,
        "detectors": bench.detectors,
        "refurbishers": bench.refurbishers,
        "trainers": bench.trainers,
    }


LIST_KINDS = ("methods", "protocols", "datasets", "noise", "detectors", "refurbishers", "trainers")


def _describe(obj: object) -> str:
    import inspect

    text = getattr(obj, "description", None) or inspect.getdoc(obj) or ""
    return text.strip().splitlines()[0] if text.strip() else ""


def protocol_settings(p: Protocol) -> str:
    """The settings of a protocol in one short block, for `bench list protocols`."""
    patients = "/".join("all" if n is None else str(n) for n in (p.train_patients, p.val_patients, p.test_patients))
    return (
        f"v{p.version}  hash {p.hash}\n{p.dataset} {p.image_size}px, patients {patients} (train/val/test)\n"
        f"U-Net {p.encoder}, decoder {list(p.decoder_channels)}; {p.epochs} epochs, batch {p.batch_size}, "
        f"Adam lr {p.lr:g}, wd {p.weight_decay:g}; recipe generation {p.recipes}\n"
        f"seeds {list(p.seeds)}; noise grid: {', '.join(p.noise_grid)}"
    )


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    """Print one table per requested kind: name and one-line description (protocols: every setting too)."""
    from rich.table import Table

    registries = _registries()
    kinds = LIST_KINDS if args.kind == "all" else (args.kind,)
    for kind in kinds:
        reg = registries[kind]
        table = Table(title=kind, title_justify="left", show_lines=kind == "protocols")
        table.add_column("name", style="bold")
        table.add_column("description")
        if kind == "protocols":
            table.add_column("settings")
        if kind == "methods":  # the newest definition; a protocol runs the one of its recipe generation
            table.add_column("generations")
        for name in reg.names():
            obj = reg.get(name)
            if kind == "methods":
                newest = obj.at(max([1, *(g for g, _ in obj.revisions)]))
                table.add_row(name, _describe(newest), ", ".join(map(str, [1, *(g for g, _ in obj.revisions)])))
                continue
            extra = [protocol_settings(obj)] if kind == "protocols" else []
            table.add_row(name, _describe(obj), *extra)
        console.print(table)
    return 0


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    """Plan the grid (checking every name first), run it under Ray Tune, print the summary."""
    from bench.grid import plan_grid  # no Ray before every name is checked
    from bench.protocols import protocols

    protocol = protocols.get(args.protocol)
    method_names = _csv(args.method, "--method")
    noise_specs: list[str] = []
    for text in args.noise or [DEFAULT_NOISE]:
        noise_specs += list(protocol.noise_grid) if text.strip() == "protocol" else split_noise_list(text)
    seeds = _seed_list(args, protocol.seeds)
    if args.cpus_per_trial < 1:
        raise BenchError(f"--cpus-per-trial must be at least 1, got {args.cpus_per_trial}")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise BenchError(f"--max-concurrent must be at least 1, got {args.max_concurrent}")
    if not 0.0 <= args.gpus_per_trial < float("inf"):
        raise BenchError(f"--gpus-per-trial must be a number >= 0, got {args.gpus_per_trial}")
    grid = plan_grid(protocol, method_names, noise_specs, seeds)
    check_output_folder(args.out)  # before data and Ray: read-only, under a file, ... (creates nothing)
    if args.data_root is not None and not args.data_root.is_dir():
        raise BenchError(f"--data-root {args.data_root} is not a folder; give the folder that holds the dataset")

    from bench.runner import check_existing, probe_address

    lock = RunLock(args.out, " ".join(["bench", *args.argv]))
    lock.refuse_if_held()  # another run on this --out is refused before any work, and again when the lock is taken
    if args.address:
        probe_address(args.address)  # a wrong address fails in seconds, before any work
    existing = check_existing(grid, args.out, {protocol.name: protocol}, resume=args.resume)  # never overwrites without --resume
    if existing.todo:
        from bench.trial import protocol_data

        with console.status(f"preparing {protocol.dataset} at {protocol.image_size} px"):
            protocol_data(protocol, args.data_root)  # bad data fails here, before Ray starts; fills the cache once
    with lock:  # one run per --out; released however the run ends
        return _run_locked(args, console, protocol, grid)


def _run_locked(args: argparse.Namespace, console: Console, protocol: Protocol, grid: list) -> int:
    """The part of `bench run` that holds --out's lock: find what is done (again, under the lock), run the rest, summarise."""
    from rich.markup import escape

    from bench.display import TrialDisplay, summary_table
    from bench.runner import check_existing, run_grid

    existing = check_existing(grid, args.out, {protocol.name: protocol}, resume=args.resume)
    if args.resume:
        redo = f" ({len(existing.redo)} failed or unreadable before, rerun)" if existing.redo else ""
        console.print(
            f"resume: {len(existing.done)} of {len(grid)} trial(s) already have an ok record under {args.out}/, skipped; "
            f"running {len(existing.todo)}{redo}",
            highlight=False,
        )
    records: list = []
    if existing.todo:
        where = f"on the Ray cluster at {args.address}" if args.address else "on a local Ray"
        gpus = f", {args.gpus_per_trial:g} GPU" if args.gpus_per_trial else ""
        console.print(
            f"[bold]{protocol.name}[/] v{protocol.version} ({protocol.hash}): {len(existing.todo)} trial(s), "
            f"{args.cpus_per_trial} CPU{gpus} each, {where}, records under {args.out}/"
        )
        with TrialDisplay(console) as display:
            records = run_grid(
                existing.todo,
                args.out,
                cpus_per_trial=args.cpus_per_trial,
                max_concurrent=args.max_concurrent,
                display=display,
                data_root=args.data_root,
                gpus_per_trial=args.gpus_per_trial,
                address=args.address,
                storage=args.storage,
                protocols={protocol.name: protocol},
            )
    ran = {(r.method["name"], r.noise["spec"], r.seed): r for r in records}
    merged = [existing.done.get(t) or ran.get((t.method, t.noise, t.seed)) for t in grid]
    console.print(summary_table([r for r in merged if r is not None]))
    failed = [r for r in records if not r.ok]
    missing = len(existing.todo) - len(records)
    for r in failed:
        console.print(f"[red]failed[/]: {escape(r.method['name'])} | {escape(r.noise['spec'])} | seed {r.seed}: {escape(r.error or '')}")
    if missing:
        console.print(f"[red]{missing} trial(s) wrote no record[/]")
    return 1 if failed or missing else 0


def cmd_noise(args: argparse.Namespace, console: Console) -> int:
    """`bench noise show`: corrupt a few training labels and draw clean vs noisy contours into a PNG."""
    import numpy as np

    from bench.data import load_dataset
    from bench.noise import apply_noise, parse_noise
    from bench.plots import compare_figure, save_png

    spec = parse_noise(args.spec)  # a bad spec fails here, before any work or file
    check_output_file(args.out, suffixes=(".png",))
    if not 0 <= args.seed <= MAX_SEED:
        raise BenchError(f"--seed must be an integer in 0..{MAX_SEED}, got {args.seed}")
    options = {"patients": 12} if args.dataset == "echo-phantom" else {}  # a small phantom draws in seconds
    train = load_dataset(args.dataset, size=args.size, **options).split("train")
    noisy = apply_noise(spec, train.labels, train.spacing, train.ids, args.seed, info=train.info, label_set=train.label_set)
    rows = [int(i) for i in np.flatnonzero(noisy.corrupted)[:4]] or list(range(min(4, len(train))))
    notes = [f"{train.ids[i]}  label Dice {noisy.label_dice[i]:.3f}" for i in rows]
    caption = (
        f"{spec.text} on {args.dataset} {args.size}px, seed {args.seed}: {int(noisy.corrupted.sum())}/{len(train)} corrupted, "
        f"mean label Dice {noisy.mean_label_dice:.3f}"
    )
    figure = compare_figure(train.images[rows], train.labels[rows], noisy.labels[rows], caption, notes, label_set=train.label_set)
    save_png(figure, args.out)
    console.print(f"wrote {args.out}: {caption}", markup=False, highlight=False, soft_wrap=True)
    return 0


def parse_options(items: list[str]) -> dict[str, int | float | str]:
    """`KEY=VALUE` strings as adapter options; values become int or float where they read as one."""
    options: dict[str, int | float | str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise BenchError(f"--option {item!r} is malformed; write KEY=VALUE, e.g. --option generator=3")
        value: int | float | str = text.strip()
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                continue
        options[key.strip()] = value
    return options


def pick_examples(info: pd.DataFrame, count: int) -> list[int]:
    """Up to `count` rows: all frames of the first patient of each image-quality grade, then further patients."""
    import numpy as np

    patients = list(dict.fromkeys(info["patient"]))
    if "quality" in info.columns:
        firsts = list(dict.fromkeys(info.drop_duplicates("quality")["patient"]))
        patients = firsts + [p for p in patients if p not in firsts]
    rows: list[int] = []
    for patient in patients:
        rows += [int(i) for i in np.flatnonzero(info["patient"].to_numpy() == patient)]
        if len(rows) >= count:
            break
    return rows[:count]


def cmd_data(args: argparse.Namespace, console: Console) -> int:
    """`bench data show`: a grid of example images with their label contours, for people to look at."""
    from bench.data import load_dataset
    from bench.plots import grid_figure, save_png

    check_output_file(args.out, suffixes=(".png",))
    if not 1 <= args.count <= MAX_SHOWN:
        raise BenchError(f"--count must be between 1 and {MAX_SHOWN}, got {args.count}")
    if args.data_root is not None and not args.data_root.is_dir():
        raise BenchError(f"--data-root {args.data_root} is not a folder; give the folder that holds the dataset")
    options = {"patients": 30} if args.name == "echo-phantom" else {}  # a small phantom draws in seconds
    options.update(parse_options(args.option))
    data = load_dataset(args.name, size=args.size, root=args.data_root, **options)
    rows = pick_examples(data.info, args.count)
    quality = data.info["quality"] if "quality" in data.info.columns else None
    notes = [data.ids[i] + (f" ({quality[i]})" if quality is not None else "") for i in rows]
    named = " ".join([args.name, *args.option])
    caption = f"{named} at {args.size}px ({data.fingerprint}): {len(rows)} of {len(data)} images"
    save_png(grid_figure(data.images[rows], data.labels[rows], caption, notes, label_set=data.label_set), args.out)
    console.print(f"wrote {args.out}: {caption}", markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_leaderboard(args: argparse.Namespace, console: Console) -> int:
    """`bench leaderboard`: read records, aggregate them into a board, print it or write it atomically to --out."""
    from bench.files import write_text_atomic
    from bench.leaderboard import SUFFIX_FORMATS, board, load_records, print_tables, render

    if args.index:
        return _write_index(args, console)
    if args.out is not None:
        check_output_file(args.out)
    fmt = board_format(args.format, args.out, SUFFIX_FORMATS)
    skipped: list[tuple[Path, str]] = []
    notes: list[str] = []
    paths = args.paths or [Path("leaderboard")]
    records = load_records(paths, protocol=args.protocol, skip_invalid=args.skip_invalid, skipped=skipped, notes=notes)
    errors = _stderr_console()
    for file, problem in skipped:
        errors.print(f"skipped {file}: {problem}", markup=False, highlight=False, soft_wrap=True)
    if skipped:
        errors.print(f"{len({f for f, _ in skipped})} invalid record file(s) left out (--skip-invalid)", markup=False, highlight=False)
    for note in notes:
        errors.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    frame = board(records)
    if args.out is None and fmt == "table":
        print_tables(frame, console)
        return 0
    text = render(frame, fmt)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    write_text_atomic(args.out, text)
    console.print(f"wrote {args.out} ({fmt}): {len(frame)} rows", markup=False, highlight=False)
    return 0


def _write_index(args: argparse.Namespace, console: Console) -> int:
    """`bench leaderboard --index`: the index page of every board under the first path, written atomically."""
    from bench.board_html import find_boards, index_page
    from bench.files import write_text_atomic

    root = (args.paths or [Path("leaderboard")])[0]
    if not root.is_dir():
        raise BenchError(f"--index: {root} is not a folder; give the folder that holds <protocol>/v<N>/board.html")
    out = args.out if args.out is not None else root / "index.html"
    check_output_file(out)
    write_text_atomic(out, index_page(root, out))
    console.print(f"wrote {out}: {len(find_boards(root))} boards", markup=False, highlight=False)
    return 0


def board_format(given: str | None, out: Path | None, suffixes: dict[str, str]) -> str:
    """The board's format: --format, else the --out suffix's; a suffix that names no format, or another one, is refused
    (`.txt` takes any format, and means the plain table without --format)."""
    if out is None:
        return given or "table"
    implied = suffixes.get(out.suffix.lower())
    if given is None and implied is None:
        known = ", ".join(sorted(suffixes))
        raise BenchError(f"--out {out}: cannot tell the format from '{out.suffix or 'no suffix'}'; name the file {known}, or give --format")
    if given is not None and implied is not None and implied != given and out.suffix.lower() != ".txt":  # .txt holds any text
        raise BenchError(f"--out {out} names the {implied} format but --format is {given}; make them agree")
    return given or implied


def cmd_audit(args: argparse.Namespace, console: Console) -> int:
    """`bench audit`: rank a dataset's cases by how likely their label is wrong (bench/audit.py)."""
    from bench.audit_run import audit_command

    return audit_command(args, parse_options(args.option), console)


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """`bench validate`: one line per problem (file: problem); exit 0 clean, 1 with problems, 2 for a missing path."""
    from bench.validate import validate_paths

    count, problems, notes = validate_paths(args.paths, args.data_root)
    for file, problem in problems:
        console.print(f"{file}: {problem}", markup=False, highlight=False, soft_wrap=True)
    for note in notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    files = len({file for file, _ in problems})
    verdict = f"{len(problems)} problem(s) in {files} file(s)" if problems else "no problems"
    console.print(f"{count} record file(s) checked: {verdict}", markup=False, highlight=False)
    return 1 if problems else 0


def _stdout_console() -> Console:
    """The console commands print to."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # logs and pipes: wide enough for the summary table not to wrap
        console = Console(width=max(console.width, 160))
    return console


def _stderr_console() -> Console:
    """The console the one-line errors go to."""
    from rich.console import Console

    return Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bench` console script."""
    try:
        args = build_parser().parse_args(argv)  # --help needs argparse only; consoles (rich) come after
        args.argv = list(sys.argv[1:] if argv is None else argv)
        handler = {
            "run": cmd_run,
            "list": cmd_list,
            "noise": cmd_noise,
            "data": cmd_data,
            "leaderboard": cmd_leaderboard,
            "validate": cmd_validate,
            "audit": cmd_audit,
        }[args.command]
        return handler(args, _stdout_console())
    except BenchError as error:
        _stderr_console().print(f"bench: error: {error}", markup=False, highlight=False, soft_wrap=True)
        return BenchError.exit_code
    except KeyboardInterrupt:
        _stderr_console().print("bench: interrupted; finished records are kept", markup=False, highlight=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
