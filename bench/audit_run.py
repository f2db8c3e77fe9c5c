"""The driver of `bench audit`: plan the folds, estimate the time, train what is not done, score, write the outputs.

`run_audit` is what the CLI calls after every argument is checked; `Audit` is what it returns (and what the
tests read). Finished folds are saved in `--out/folds/` as they finish, so `--resume` keeps them and Ctrl-C
loses at most the fold in progress; the outputs are written only after every fold is done, each atomically.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.audit import (
    AuditSettings,
    assign_folds,
    audit_ranks,
    ensemble_score,
    fold_key,
    fold_seed,
    given_labels,
    injection_summary,
    measure_rate,
    score_cases,
    settings_text,
    train_fold,
)
from bench.audit_output import FOLDS, PROPOSED, load_fold, propose_labels, save_fold, staged, swap_in, write_proposals
from bench.data import Data
from bench.errors import BenchError
from bench.files import atomic_writer, write_text_atomic
from bench.labelmaps import dice_per_structure

#: what a previous audit leaves in --out (a new audit there needs --resume)
MARKERS = ("audit.json", "audit.csv", FOLDS)


@dataclass
class Audit:
    """A finished audit: the settings, the labels judged, the folds, held-out softmax, scores, ranks and the files."""

    settings: AuditSettings
    data: Data
    given: np.ndarray  # uint8 (N, H, W): the labels judged (with --inject, the corrupted copy)
    truth: np.ndarray | None  # bool (N,): with --inject, which cases were corrupted
    folds: np.ndarray  # int (N,): the fold whose model scored each case (it trained on every other fold)
    trained_on: list[set[str]]  # per fold: the case ids its model trained on
    probs: torch.Tensor  # float32 (N, C, H, W): each case's held-out softmax
    scores: dict[str, np.ndarray]  # detector -> (N,)
    ensemble: np.ndarray
    ranks: np.ndarray  # 1 = review first
    table: pd.DataFrame  # audit.csv, in rank order
    summary: dict[str, Any]  # audit.json


class FoldProgress:
    """Progress per fold and epoch: a rich bar per fold on a terminal, one line per epoch otherwise (logs)."""

    def __init__(self, console: Console, work: int) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.started = time.perf_counter()
        self.work, self.done = work, 0  # training images x epochs still to do, and done: the remaining time as it goes

    def left(self) -> str:
        """The remaining training time, from the rate observed so far in this audit."""
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        return f"about {(self.work - self.done) / max(rate, 1e-9) / 60:.1f} min left"

    def __enter__(self) -> FoldProgress:
        if self.console.is_terminal:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[loss]}"),
                TimeElapsedColumn(),
            )
            self.progress = Progress(*columns, console=self.console)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def fold(self, fold: int, folds: int, n_seen: int, epochs: int) -> Any:
        """A callback `on_epoch(epoch, loss)` for fold `fold`'s training."""
        name = f"fold {fold + 1}/{folds} (trains on {n_seen} cases)"
        task = self.progress.add_task(name, total=epochs, loss="") if self.progress is not None else None

        def on_epoch(epoch: int, loss: float) -> None:
            self.done += n_seen
            if self.progress is not None:
                self.progress.update(task, completed=epoch, loss=f"train loss {loss:.3f}, {self.left()}")
            else:
                elapsed = time.perf_counter() - self.started
                line = f"[{elapsed:6.0f}s] {name}: epoch {epoch}/{epochs}, train loss {loss:.3f}, {self.left()}"
                self.console.print(line, markup=False, highlight=False)

        return on_epoch


def previous_audit(out: Path) -> bool:
    """Whether `out` holds the outputs or fold files of an earlier audit."""
    return any((out / m).exists() for m in MARKERS)


def case_table(data: Data, audit_parts: dict[str, Any], settings: AuditSettings) -> pd.DataFrame:
    """audit.csv: one row per case in rank order; scores, ensemble, per-structure Dice of the given label against the
    held-out prediction, the structure most in doubt (lowest Dice; empty when every structure agrees), fold, flags."""
    p = audit_parts
    rows = pd.DataFrame(
        {"case": data.ids, "rank": p["ranks"], "patient": data.info["patient"].astype(str).to_numpy(), "fold": p["folds"] + 1}
    )
    for name, values in p["scores"].items():
        rows[f"score_{name}"] = values
    rows["ensemble"] = p["ensemble"]
    names = list(data.label_set.names)
    dice = np.stack([p["dice"][s] for s in names], axis=1)
    for j, s in enumerate(names):
        rows[f"dice_{s}"] = dice[:, j]
    doubt = np.argmin(dice, axis=1)
    rows["most_in_doubt"] = np.where(dice.min(1) < 1.0, np.asarray(names, dtype=object)[doubt], "")
    rows["flagged"] = p["ranks"] <= settings.top
    rows["proposed"] = ""
    if p["truth"] is not None:
        rows["injected"] = p["truth"]
    return rows.sort_values("rank", kind="stable").reset_index(drop=True)


def check_against_data(data: Data, settings: AuditSettings) -> tuple[np.ndarray, np.ndarray | None, Any, np.ndarray]:
    """The settings checked against the data (--top, --folds, --inject; BenchError otherwise): the labels judged, the
    injected truth and noise result, and every case's fold."""
    if settings.top > len(data):
        raise BenchError(f"--top {settings.top} is more than the {len(data)} cases; give at most {len(data)}")
    folds = assign_folds(data.info["patient"].astype(str).tolist(), settings.folds, settings.seed)
    given, truth, noisy = given_labels(data, settings)
    return given, truth, noisy, folds


def _estimate(data: Data, settings: AuditSettings, sizes: list[int]) -> tuple[float, float]:
    """(seconds, images/s): the fold trainings still to do, from a measured training rate on this machine."""
    if not sizes:
        return 0.0, float("nan")
    rate = measure_rate(data, settings.protocol())
    predict = len(data) / (3 * rate)  # a forward pass costs about a third of a training step
    return settings.epochs * sum(sizes) / rate + predict, rate


def run_audit(data: Data, settings: AuditSettings, out: Path, console: Console, resume: bool = False, command: str = "") -> Audit:
    """Audit `data` under `settings` into `out` (see `bench.audit`); bad input is a BenchError before anything is written."""
    import bench
    from bench.audit_report import render_report
    from bench.device import device_description
    from bench.record import provenance_section
    from bench.trial import seed_everything

    t_start = time.perf_counter()
    seed_everything(settings.seed)  # and deterministic kernels, as a trial asks for
    given, truth, noisy, folds = check_against_data(data, settings)
    protocol = settings.protocol()
    console.print(settings_text(settings, len(data), data.info["patient"].nunique()), markup=False, highlight=False)
    plans, done = [], {}
    for k in range(settings.folds):
        seen, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        key = fold_key(settings, data, given, seen, k)
        plans.append((seen, held, key))
        if resume:
            loaded = load_fold(out / FOLDS / f"fold{k + 1}.npz", key, held)
            if loaded is not None:
                done[k] = loaded
    todo = [k for k in range(settings.folds) if k not in done]
    estimate, rate = _estimate(data, settings, [len(plans[k][0]) for k in todo])
    kept = f"{len(done)} finished fold(s) kept (--resume); " if done else ""
    rate_text = f" at {rate:.0f} training images/s measured here" if todo else ""
    console.print(
        f"{kept}training {len(todo)} fold model(s): about {estimate / 60:.1f} min{rate_text}; outputs in {out}/",
        markup=False,
        highlight=False,
    )
    probs = torch.zeros(len(data), data.label_set.num_classes, *data.images.shape[1:])
    train_s: dict[int, float] = {}
    with FoldProgress(console, settings.epochs * sum(len(plans[k][0]) for k in todo)) as display:
        for k in range(settings.folds):
            seen, held, key = plans[k]
            if k in done:
                probs[torch.from_numpy(held)], train_s[k] = done[k]
                continue
            on_epoch = display.fold(k, settings.folds, len(seen), settings.epochs)
            p, train_s[k] = train_fold(data, given, seen, held, protocol, fold_seed(settings.seed, k), on_epoch)
            save_fold(out / FOLDS / f"fold{k + 1}.npz", p, held, key, train_s[k], [data.ids[i] for i in seen])
            probs[torch.from_numpy(held)] = p
    t_score = time.perf_counter()
    scores = score_cases(probs, given, settings.detectors, protocol.dice_weight, data.label_set)
    ensemble = ensemble_score(scores)
    ranks = audit_ranks(ensemble, data.ids)
    dice = dice_per_structure(probs.argmax(1).numpy().astype(np.uint8), given, data.label_set)
    parts = {"ranks": ranks, "folds": folds, "scores": scores, "ensemble": ensemble, "dice": dice, "truth": truth}
    table = case_table(data, parts, settings)
    score_s = time.perf_counter() - t_score

    t_write = time.perf_counter()
    flagged = np.flatnonzero(ranks <= settings.top)
    flagged = flagged[np.argsort(ranks[flagged])]
    proposals = propose_labels(given[flagged], probs[torch.from_numpy(flagged)], data.label_set, settings.threshold)
    staging = staged(out, PROPOSED)
    try:
        written = write_proposals(data, flagged, given, proposals, staging, injected=truth is not None)
        position = {case: row for row, case in enumerate(table["case"])}
        for i in flagged:
            text = f"{PROPOSED}/{written[int(i)]}" if int(i) in written else "no change (no pixel above the gate)"
            table.loc[position[data.ids[i]], "proposed"] = text
        swap_in(staging, out / PROPOSED)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    trained_on = [{data.ids[i] for i in plans[k][0]} for k in range(settings.folds)]
    inject = None
    if truth is not None:
        inject = {
            "spec": noisy.spec.text,
            "seed": settings.seed,
            "n_corrupted": int(truth.sum()),
            "mean_label_dice": noisy.mean_label_dice,
            "detection": injection_summary({**scores, "ensemble": ensemble}, truth, settings.top),
        }
    summary = {
        "kind": "bench audit",
        "dataset": {"name": data.name, "fingerprint": data.fingerprint, "cases": len(data), "options": _jsonable(data.options)},
        "settings": {**_jsonable(vars(settings)), "detectors": list(settings.detectors)},
        "protocol": {**protocol.settings(), "hash": protocol.hash},
        "ensemble": "mean over the detectors of each case's normalised rank ((average rank - 1) / (N - 1)); rank 1 = highest",
        "flagged": f"the top {settings.top} cases by rank (--top); a proposed label where the gate changes a pixel",
        "folds": [
            {
                "fold": k + 1,
                "cases": [data.ids[i] for i in plans[k][1]],
                "patients": sorted(set(data.info["patient"].astype(str).iloc[plans[k][1]])),
                "trained_on": len(plans[k][0]),
                "train_s": train_s[k],
                "resumed": k in done,
            }
            for k in range(settings.folds)
        ],
        "inject": inject,
        "proposed": {"count": len(written), "format": _format_note(data)},
        "timings": {"estimate_s": estimate, "training_rate_images_per_s": rate if todo else None, "score_s": score_s},
        "provenance": provenance_section(device_description(), command, bench.__version__),
    }
    audit = Audit(settings, data, given, truth, folds, trained_on, probs, scores, ensemble, ranks, table, summary)
    with atomic_writer(out / "audit.csv", "w", encoding="utf-8") as f:
        table.to_csv(f, index=False)  # full precision: ranks recomputed from the file agree
    write_text_atomic(out / "report.html", render_report(audit))
    summary["timings"].update(write_s=time.perf_counter() - t_write, total_s=time.perf_counter() - t_start)
    write_text_atomic(out / "audit.json", json.dumps(summary, indent=2, default=_json_default) + "\n")
    return audit


def _format_note(data: Data) -> str:
    if data.name == "nnunet":
        return "each case's own format and geometry (ending, header, spacing), at its original size"
    return "NIfTI (.nii.gz) at the working size, x = column, y = row, the working grid's spacing (mm) in the header"


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, (np.ndarray, tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def audit_command(args: Any, options: dict[str, Any], console: Console) -> int:
    """`bench audit`: check every argument (one BenchError line, nothing written), load the data, audit under --out's lock."""
    import bench
    from bench.audit import parse_detectors
    from bench.data import MAX_SIZE, MIN_SIZE, load_dataset
    from bench.files import RunLock, check_output_folder
    from bench.noise import parse_noise

    bench.datasets.get(args.dataset)  # an unknown name fails first, with a suggestion
    detectors = parse_detectors(args.detector)
    bounds = (("--folds", args.folds, 2, 100), ("--size", args.size, MIN_SIZE, MAX_SIZE), ("--epochs", args.epochs, 1, 1000))
    for option, value, low, high in (*bounds, ("--seed", args.seed, 0, 2**32 - 1), ("--top", args.top, 1, 10**6)):
        if not low <= value <= high:
            raise BenchError(f"{option} must be an integer from {low} to {high}, got {value}")
    inject = None
    if args.inject is not None:
        spec = parse_noise(args.inject)
        if spec.type == "none":
            raise BenchError("--inject none corrupts nothing; give a noise spec such as systematic:0.25, or leave --inject out")
        inject = spec.text
    root = args.data_root
    if root is not None and not root.is_dir():
        raise BenchError(f"--data-root {root} is not a folder; give the folder that holds the dataset")
    out = args.out
    check_output_folder(out)
    if root is not None and out.resolve().is_relative_to(root.resolve()):
        raise BenchError(f"--out {out} is inside the dataset folder {root}; the audit never writes there: pick a folder outside it")
    if previous_audit(out) and not args.resume:
        raise BenchError(f"--out {out} holds an earlier audit; pass --resume to keep its finished folds, or pick another --out")
    lock = RunLock(out, " ".join(["bench", *args.argv]))
    lock.refuse_if_held()
    if args.dataset == "echo-phantom":
        options = {"patients": 60, **options}  # 240 images, phantom-quick's training-set size; --option patients=N for more
    settings = AuditSettings(args.dataset, detectors, args.folds, args.size, args.epochs, args.seed, args.top, inject, options)
    with console.status(f"preparing {args.dataset} at {args.size} px"):
        data = load_dataset(args.dataset, size=args.size, root=root, **options)
    check_against_data(data, settings)  # before the lock creates --out
    try:
        with lock:
            audit = run_audit(data, settings, out, console, resume=args.resume, command=" ".join(["bench", *args.argv]))
    except KeyboardInterrupt:
        console.print(
            f"interrupted: finished folds are kept in {out / FOLDS}/; rerun with --resume to continue", markup=False, highlight=False
        )
        return 130
    _print_summary(audit, out, console)
    return 0


def _print_summary(audit: Audit, out: Path, console: Console) -> None:
    """The top cases and, with --inject, the detection table, as rich tables."""
    from rich.table import Table

    table = Table(title=f"top {min(10, audit.settings.top)} of {len(audit.data)} cases (all in {out / 'audit.csv'})", title_justify="left")
    for col in ("rank", "case", "ensemble", "most in doubt", "proposed"):
        table.add_column(col)
    for row in audit.table.head(min(10, audit.settings.top)).itertuples(index=False):
        table.add_row(str(row.rank), row.case, f"{row.ensemble:.3f}", row.most_in_doubt or "-", str(row.proposed) or "-")
    console.print(table)
    inject = audit.summary["inject"]
    if inject:
        det = Table(
            title=f"injected {inject['spec']}: {inject['n_corrupted']} corrupted; review budget N = {audit.settings.top}",
            title_justify="left",
        )
        for col in ("detector", "precision@N", "recall@N", "AUROC", "AP"):
            det.add_column(col)
        for name, d in inject["detection"].items():
            cells = [("-" if d[k] is None else f"{d[k]:.3f}") for k in ("precision_at_budget", "recall_at_budget", "auroc", "ap")]
            det.add_row(name, *cells)
        console.print(det)
    timings = audit.summary["timings"]
    console.print(
        f"wrote {out}/audit.csv, audit.json, report.html and {audit.summary['proposed']['count']} proposed label(s) in "
        f"{out / PROPOSED}/ ({timings['total_s']:.0f} s; estimated {timings['estimate_s']:.0f} s for training)",
        markup=False,
        highlight=False,
    )
