"""Bad input, as a new user or an adversary types it: one line naming the problem and the fix, exit 2, nothing written,
and no expensive work (data preparation, Ray) started. Table-driven: a new case is one row."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bench.runner
import bench.trial
from bench.cli import main
from bench.grid import plan_grid

RUN = ["run", "--protocol", "tiny"]
TINY = [*RUN, "--method", "baseline", "--noise", "none"]
NOISE_SHOW = ["noise", "show", "systematic:0.5"]
PHANTOM_SHOW = ["data", "show", "echo-phantom"]


def _layout(tmp: Path) -> dict[str, str]:
    """Paths the cases refer to, made before the snapshot: a file, a folder, a read-only folder."""
    (tmp / "a-file").write_text("not a folder\n")
    (tmp / "a-folder").mkdir()
    (tmp / "read-only").mkdir()
    (tmp / "read-only").chmod(0o555)
    (tmp / "empty").mkdir()
    return {name: str(tmp / name) for name in ("a-file", "a-folder", "read-only", "empty")} | {"tmp": str(tmp)}


#: (case id, argv with {placeholders} from `_layout`, a fragment of the one error line)
CASES = [
    # bench run: bounds
    ("seeds-list", [*TINY, "--seeds", "2,3"], "--seeds takes one count N (seeds 0..N-1), got '2,3'; for given seeds use --seed 2,3"),
    ("seeds-huge", [*TINY, "--seeds", "100000000000"], "--seeds must be between 1 and 1000, got 100000000000"),
    ("seeds-zero", [*TINY, "--seeds", "0"], "--seeds must be between 1 and 1000, got 0"),
    ("seeds-text", [*TINY, "--seeds", "two"], "--seeds must be integers, got 'two'"),
    ("seed-2**32", [*TINY, "--seed", "4294967296"], "seeds must be integers in 0..4294967295, got 4294967296"),
    ("seed-negative", [*TINY, "--seed", "-1"], "seeds must be integers in 0..4294967295, got -1"),
    ("seed-and-seeds", [*TINY, "--seed", "1", "--seeds", "2"], "not allowed with argument"),
    ("cpus-zero", [*TINY, "--cpus-per-trial", "0"], "--cpus-per-trial must be at least 1, got 0"),
    ("concurrent-zero", [*TINY, "--max-concurrent", "0"], "--max-concurrent must be at least 1, got 0"),
    ("gpus-negative", [*TINY, "--gpus-per-trial", "-1"], "--gpus-per-trial must be a number >= 0, got -1.0"),
    # bench run: what the user typed is kept or refused, never rewritten
    ("seed-empty-item", [*TINY, "--seed", "1,,2"], "--seed '1,,2' has an empty item"),
    ("method-empty-item", [*RUN, "--method", "baseline,,loss-refurb"], "--method 'baseline,,loss-refurb' has an empty item"),
    ("option-prefix", [*RUN, "--meth", "baseline"], "unrecognized arguments: --meth baseline"),
    ("min-above-max", [*RUN, "--noise", "random:0.5,min_mm=5,max_mm=1"], "min_mm=5 is larger than max_mm=1"),
    # bench run: names and specs
    ("method", [*RUN, "--method", "basline"], "unknown method 'basline'; did you mean 'baseline'?"),
    ("needs-trusted", [*RUN, "--method", "spatial-correction"], "needs trusted (verified clean) training patients"),
    ("protocol-version", ["run", "--protocol", "tiny@v9"], "protocol tiny has no version 9 (registered: v1"),
    ("protocol", ["run", "--protocol", "tinny"], "unknown protocol 'tinny'; did you mean 'tiny'?"),
    ("noise-type", [*RUN, "--noise", "systemtic:0.5"], "unknown noise type 'systemtic'"),
    ("noise-level", [*RUN, "--noise", "systematic:1.5"], "level 1.5 is outside [0, 1]"),
    ("noise-nan", [*RUN, "--noise", "systematic:nan"], "level nan is outside [0, 1]"),
    ("noise-param", [*RUN, "--noise", "systematic:0.5,mm=abc"], "mm=abc is not a number"),
    ("noise-twice", [*RUN, "--noise", "systematic:0.5,mm=3,mm=4"], "key 'mm' is given twice"),
    ("noise-leading-param", [*RUN, "--noise", "mm=3"], "starts with a parameter"),
    # bench run: paths, before any data or Ray
    ("out-is-file", [*TINY, "--out", "{a-file}"], "is a file, not a folder; pick another path"),
    ("out-under-file", [*TINY, "--out", "{a-file}/records"], "is a file, not a folder; pick another path"),
    ("data-root-missing", [*TINY, "--data-root", "{tmp}/nowhere"], "--data-root {tmp}/nowhere is not a folder"),
    # bench noise show
    ("noise-show-seed", [*NOISE_SHOW, "--seed", "-1", "--out", "{tmp}/n.png"], "--seed must be an integer in 0.."),
    ("noise-show-suffix", [*NOISE_SHOW, "--out", "{tmp}/n.jpg"], "must end in .png"),
    ("noise-show-folder", [*NOISE_SHOW, "--out", "{a-folder}"], "is a folder; give a file name"),
    ("noise-show-under-file", [*NOISE_SHOW, "--out", "{a-file}/n.png"], "is a file, not a folder"),
    ("noise-show-size", [*NOISE_SHOW, "--size", "100000", "--out", "{tmp}/n.png"], "image size 100000 is out of range"),
    ("noise-show-spec", ["noise", "show", "systematic:2", "--out", "{tmp}/n.png"], "outside [0, 1]"),
    # bench data show
    ("data-patients-text", [*PHANTOM_SHOW, "--option", "patients=abc", "--out", "{tmp}/d.png"], "patients='abc' is not a whole number"),
    ("data-patients-huge", [*PHANTOM_SHOW, "--option", "patients=100000000", "--out", "{tmp}/d.png"], "is too many"),
    ("data-size", [*PHANTOM_SHOW, "--size", "100000", "--out", "{tmp}/d.png"], "image size 100000 is out of range"),
    ("data-count", [*PHANTOM_SHOW, "--count", "0", "--out", "{tmp}/d.png"], "--count must be between 1 and 64, got 0"),
    ("data-option", [*PHANTOM_SHOW, "--option", "generator", "--out", "{tmp}/d.png"], "--option 'generator' is malformed"),
    ("data-unknown", ["data", "show", "camuss", "--out", "{tmp}/d.png"], "unknown dataset 'camuss'; did you mean 'camus'?"),
    ("data-root", ["data", "show", "camus", "--data-root", "{tmp}/nowhere", "--out", "{tmp}/d.png"], "is not a folder"),
    # bench leaderboard
    ("board-suffix", ["leaderboard", "leaderboard", "--out", "{tmp}/b.json"], "cannot tell the format from '.json'"),
    ("board-disagree", ["leaderboard", "leaderboard", "--format", "md", "--out", "{tmp}/b.csv"], "names the csv format but --format is md"),
    ("board-folder", ["leaderboard", "leaderboard", "--out", "{a-folder}"], "is a folder; give a file name"),
    ("board-under-file", ["leaderboard", "leaderboard", "--out", "{a-file}/b.md"], "is a file, not a folder"),
    ("board-missing", ["leaderboard", "{tmp}/nowhere"], "no such file or folder"),
    ("board-empty", ["leaderboard", "{empty}"], "no records found under"),
    ("board-format", ["leaderboard", "leaderboard", "--format", "pdf"], "invalid choice: 'pdf'"),
    # bench validate
    ("validate-empty", ["validate", "{empty}"], "no record files (*.json) under"),
    ("validate-missing", ["validate", "{tmp}/nowhere"], "no such file or folder"),
    # the command itself
    ("command", ["runn"], "invalid choice: 'runn'"),
    ("list-kind", ["list", "method"], "invalid choice: 'method'"),
]
if os.geteuid() != 0:  # root writes into read-only folders, so these only mean something for other users
    CASES += [
        ("out-read-only", [*TINY, "--out", "{read-only}/records"], "cannot write in"),
        ("board-read-only", ["leaderboard", "leaderboard", "--out", "{read-only}/b.md"], "cannot write in"),
        ("noise-show-read-only", [*NOISE_SHOW, "--out", "{read-only}/n.png"], "cannot write in"),
    ]


@pytest.fixture()
def no_expensive_work(monkeypatch):
    """Data preparation and the Ray run fail the test if a bad input reaches them."""

    def expensive(*args, **kwargs):
        raise AssertionError("bad input reached data preparation or Ray")

    monkeypatch.setattr(bench.trial, "protocol_data", expensive)
    monkeypatch.setattr(bench.runner, "run_grid", expensive)
    monkeypatch.setattr(bench.runner, "init_ray", expensive)


def _snapshot(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


@pytest.mark.parametrize(("argv", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(argv, message, tmp_path, capsys, monkeypatch, no_expensive_work):
    paths = _layout(tmp_path)
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # `leaderboard` is the published records folder
    before = _snapshot(tmp_path)
    assert main([a.format(**paths) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), captured.err
    assert message.format(**paths) in lines[0]
    assert captured.out == ""
    assert _snapshot(tmp_path) == before


def test_the_case_table_is_wide():
    """The categories of issue 13 and beyond; the note reports this count."""
    assert len(CASES) >= 45


def test_two_specs_that_differ_stay_two_cells():
    tiny = bench.protocols.get("tiny")
    grid = plan_grid(tiny, ["baseline"], ["systematic:0.12345678", "systematic:0.12345699"], [0])
    assert [t.noise for t in grid] == ["systematic:0.12345678", "systematic:0.12345699"]


def test_a_second_run_on_the_same_out_is_refused_naming_the_holder(tmp_path, capsys, no_expensive_work):
    """A live lock (another process holds it) refuses at once; a lock its holder left behind (killed) is taken over."""
    from bench.files import RunLock

    out = tmp_path / "records"
    holder = textwrap.dedent(
        f"""
        import sys, time
        from bench.files import RunLock
        with RunLock({str(out)!r}, "bench run --method baseline"):
            print("held", flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        assert main([*TINY, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{out} is in use by bench run (pid {child.pid} on " in err
        assert err.endswith("bench run --method baseline; wait for it to finish or use another --out")
    finally:
        child.kill()
        child.wait()
    # the killed holder's lock file is still there, but its lock died with it: the next run takes it over
    assert (out / RunLock.NAME).read_text().startswith(f"bench run (pid {child.pid}")
    with RunLock(out, "bench run --resume") as lock:
        assert lock is not None and "bench run --resume" in (out / RunLock.NAME).read_text()
    assert sorted(p.name for p in out.iterdir()) == [RunLock.NAME]


def test_records_are_never_written_through_a_planted_link(tmp_path):
    """A symbolic link planted in the output folder must not carry a record outside it."""
    from bench.record import Record

    record = Record.from_dict(bench.run_trial("tiny", "baseline", "none", 0).to_dict())
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "tiny").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(bench.BenchError, match="leads outside"):
        record.write(out)
    assert list(elsewhere.iterdir()) == []
