"""Real Ray Tune runs of tiny grids: through the command line, with failures, --resume, Ctrl-C and an existing cluster."""

import contextlib
import dataclasses
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.protocols import protocols
from bench.record import Record

TINY_ONE = ["--protocol", "tiny", "--method", "baseline", "--noise", "none"]


def _records(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.json") if "_tune" not in p.parts)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpus-per-trial", "-1"], "--gpus-per-trial must be a number >= 0, got -1.0"),
        (["--address", "nonsense"], "--address nonsense is not HOST:PORT"),
        (["--address", "127.0.0.1:1"], "cannot reach Ray at 127.0.0.1:1: Connection refused"),
    ],
)
def test_run_usage_errors_are_one_line_before_ray_starts(tmp_path, capsys, argv, message):
    assert main(["run", *TINY_ONE, "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "r").exists()


def test_check_existing_skips_ok_reruns_failed_and_refuses_a_changed_protocol(tmp_path):
    from bench.files import write_text_atomic
    from bench.runner import TrialSpec, cell_path, check_existing, failed_record
    from bench.trial import run_trial

    tiny = protocols.get("tiny")
    grid = [TrialSpec("tiny", "baseline", "none", s) for s in range(4)]
    ok = run_trial(tiny, "baseline", "none", 0)
    assert cell_path(tmp_path, grid[0], tiny) == tmp_path / "tiny/v1/baseline/none/seed0.json"
    ok.write(tmp_path)
    failed_record(grid[1], tiny, RuntimeError("boom")).write(tmp_path)
    cell_path(tmp_path, grid[2], tiny).write_text('{"half": ')
    found = check_existing(grid, tmp_path, {"tiny": tiny}, resume=True)
    assert found.todo == grid[1:] and list(found.done) == [grid[0]]
    assert [(s.seed, why) for s, why in found.redo] == [(1, "failed before"), (2, "unreadable (JSONDecodeError)")]
    with pytest.raises(BenchError, match=r"seed0\.json; add --resume"):
        check_existing(grid, tmp_path, {"tiny": tiny}, resume=False)
    changed = ok.to_dict()
    changed["protocol"]["hash"] = "0123456789abcdef"
    write_text_atomic(cell_path(tmp_path, grid[0], tiny), json.dumps(changed))
    with pytest.raises(BenchError, match="has protocol hash 0123456789abcdef, but tiny v1 is now"):
        check_existing(grid, tmp_path, {"tiny": tiny}, resume=True)


@pytest.mark.ray
def test_bench_run_runs_the_grid_as_tune_trials(ray_session, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["run", "--protocol", "tiny", "--method", "baseline,loss-refurb", "--noise", "systematic:0.5", "--seeds", "1", "--out", str(out)]
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 0, captured.out + captured.err
    records = sorted(out.glob("tiny/v1/*/*/seed*.json"))
    assert [p.relative_to(out).parts[2] for p in records] == ["baseline", "loss-refurb"]
    for path in records:
        record = json.loads(path.read_text())
        assert Record.problems(record) == []
        assert record["status"] == "ok"
        assert record["provenance"]["device"]["torch_threads"] == 1  # from the trial's CPU share
    # the summary table names both methods and the per-structure Dice columns
    assert "Dice LV" in captured.out and "Dice MYO" in captured.out and "Dice LA" in captured.out
    assert "baseline" in captured.out and "loss-refurb" in captured.out
    assert not list(out.rglob("*.tmp"))


@pytest.mark.ray
def test_a_failing_trial_is_recorded_and_the_others_finish(ray_session, tmp_path):
    """One grid, three protocols (sent from the driver; the workers never registered two of them)."""
    from bench.runner import TrialSpec, run_grid

    tiny = protocols.get("tiny")
    broken = dataclasses.replace(tiny, name="tiny-broken", dataset_options={**tiny.dataset_options, "colour": "blue"})
    diverges = dataclasses.replace(tiny, name="tiny-nan", dice_weight=float("nan"))  # NaN loss from the first step
    grid = [TrialSpec(p.name, "baseline", "none", 0) for p in (broken, tiny, diverges)]
    out = tmp_path / "results"
    records = run_grid(grid, out, protocols={p.name: p for p in (tiny, broken, diverges)})

    assert [r.protocol["name"] for r in records] == ["tiny-broken", "tiny", "tiny-nan"]
    assert [r.status for r in records] == ["failed", "ok", "failed"]
    assert records[0].error.startswith("BenchError: dataset 'echo-phantom' has no option 'colour'")
    assert records[2].error.startswith("FloatingPointError") and "not finite" in records[2].error
    for record in records:
        path = out / record.protocol["name"] / "v1" / "baseline" / "none" / "seed0.json"
        assert Record.read(path) == record
        assert Record.problems(record.to_dict()) == []
        assert record.protocol["hash"] == {p.name: p.hash for p in (tiny, broken, diverges)}[record.protocol["name"]]
    assert not list(out.rglob("*.tmp"))


@pytest.mark.ray
def test_resume_runs_only_the_missing_cells(ray_session, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["run", *TINY_ONE, "--seeds", "2", "--out", str(out)]
    assert main(argv) == 0
    kept, lost = out / "tiny/v1/baseline/none/seed0.json", out / "tiny/v1/baseline/none/seed1.json"
    before = (kept.read_bytes(), kept.stat().st_mtime_ns)
    lost.unlink()
    capsys.readouterr()

    # without --resume an existing record is an error before anything runs: one line, exit 2
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(kept) in err and "--resume" in err

    assert main([*argv, "--resume"]) == 0
    captured = capsys.readouterr()
    assert "resume: 1 of 2 trial(s) already have an ok record" in captured.out
    assert "seed 1: ok" in captured.out and "seed 0: running" not in captured.out  # only the missing cell ran
    assert (kept.read_bytes(), kept.stat().st_mtime_ns) == before
    record = json.loads(lost.read_text())
    assert record["status"] == "ok" and record["seed"] == 1 and Record.problems(record) == []
    assert "2" in captured.out.split("baseline")[-1]  # the summary counts both seeds

    # everything done: nothing runs, exit 0
    assert main([*argv, "--resume"]) == 0
    assert "running 0" in capsys.readouterr().out


def _reader(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue, text: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"'{text}' did not appear within {timeout} s:\n{''.join(seen)}")


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.mark.ray
def test_ctrl_c_stops_the_run_and_keeps_finished_records(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: the driver and its local Ray."""
    out = tmp_path / "results"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    argv = [sys.executable, "-m", "bench", "run", *TINY_ONE, "--seeds", "4", "--max-concurrent", "1", "--out", str(out)]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        # as from a terminal: a suite started as a background job (`cmd &`) ignores SIGINT, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_for(_reader(proc.stdout), "seed 0: ok", timeout=180)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        err = proc.stderr.read().strip()
        assert err == "bench: interrupted; finished records are kept"
        assert _group_gone(proc.pid, timeout=30), "Ray processes outlived the interrupted run"
    finally:
        _kill_group(proc.pid)  # whatever is left after a failed assertion
    records = _records(out)
    assert out / "tiny/v1/baseline/none/seed0.json" in records and len(records) < 4
    for path in records:
        assert Record.problems(json.loads(path.read_text())) == []
    assert not list(out.rglob("*.tmp"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    """A Ray head started as its own process on loopback, with a private temp dir and auth token.

    Stopped by SIGTERM to that one process (it drains and stops what it started), not by
    `ray stop`, which would stop every Ray on the machine, this session's included.
    """
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="enb-ray-", dir="/tmp")  # short: Ray's socket paths must stay under ~107 characters
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    ray_bin = Path(sys.executable).with_name("ray")
    argv = [
        str(ray_bin),
        "start",
        "--head",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
        "--block",
    ]
    head = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        _wait_for(_reader(head.stdout), "--block", timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        if not _group_gone(head.pid, timeout=10):
            _kill_group(head.pid)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.ray
def test_bench_run_on_an_existing_ray_cluster(ray_head, tmp_path):
    """`bench run --address` in its own process (this one's Ray stays out of it) against a separate head."""
    address, env = ray_head
    out, storage = tmp_path / "results", tmp_path / "tune-storage"
    argv = [sys.executable, "-m", "bench", "run", *TINY_ONE, "--seeds", "1", "--address", address, "--storage", str(storage)]
    argv += ["--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"on the Ray cluster at {address}" in proc.stdout
    (path,) = _records(out)
    record = json.loads(path.read_text())
    assert Record.problems(record) == []
    assert record["status"] == "ok" and record["protocol"]["hash"] == protocols.get("tiny").hash
    assert [p.name for p in storage.iterdir()] and not (out / "_tune").exists()  # Tune's state went to --storage
    assert main(["validate", str(out)]) == 0


@pytest.mark.ray
def test_a_trial_no_node_could_hold_is_refused_before_tune_waits(ray_session):
    import ray

    from bench.runner import check_resources

    gpus = ray.cluster_resources().get("GPU", 0.0)
    with pytest.raises(BenchError, match="lower --gpus-per-trial"):
        check_resources(1, gpus + 1)
    with pytest.raises(BenchError, match="lower --cpus-per-trial"):
        check_resources(10_000, 0.0)
