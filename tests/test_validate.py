"""`bench validate`: a clean record set passes; every kind of problem is caught, one line per problem."""

import copy
import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.record import record_path, write_json_atomic
from bench.trial import run_trial


@pytest.fixture(scope="module")
def real_record() -> dict:
    """One real tiny trial with a detector and a refurbisher (detection, refurbishment and per-sample sections filled)."""
    return run_trial("tiny", "loss-refurb", "systematic:0.5", 0)


def _write(root: Path, record: dict, name: str | None = None) -> Path:
    path = root / name if name else record_path(root, record)
    write_json_atomic(path, record)
    return path


def _clean_set(root: Path, record: dict) -> list[Path]:
    """The real record and a copy filed as seed 1: a small clean board."""
    other = copy.deepcopy(record)
    other["seed"] = 1
    return [_write(root, record), _write(root, other)]


def _validate(capsys, *paths) -> tuple[int, list[str]]:
    rc = main(["validate", *map(str, paths)])
    lines = capsys.readouterr().out.strip().splitlines()
    # the last line is the count; notes on package versions follow the venv running the tests (tests/test_environment.py)
    return rc, [line for line in lines[:-1] if "; the lock has " not in line]


def test_a_clean_record_set_passes(real_record, tmp_path, capsys):
    _clean_set(tmp_path, real_record)
    (tmp_path / "_tune").mkdir()
    (tmp_path / "_tune" / "experiment_state.json").write_text("{}")  # Tune's files are not records: skipped
    rc = main(["validate", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "2 record file(s) checked: no problems" in out


def _set(record: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        record = record[key]
    record[leaf] = value


BROKEN = [
    ("metrics.dice.lv", 1.2, "metrics.dice.lv = 1.2 is not in [0, 1]"),
    ("metrics.hd95.myo", -1.0, "metrics.hd95.myo = -1.0 is not a finite distance"),
    ("cost.wall_s", -3.0, "cost.wall_s = -3.0 is not a finite non-negative time"),
    ("noise.n_corrupted", 99, "noise.n_corrupted = 99 is more than dataset.n_train = 16"),
    ("metrics.detection.n_flagged", 17, "metrics.detection.n_flagged = 17 is more than dataset.n_train = 16"),
    ("metrics.detection.auroc", 1.5, "metrics.detection.auroc = 1.5 is not in [0, 1]"),
    ("metrics.detection.recall", -0.1, "metrics.detection.recall = -0.1 is not in [0, 1]"),
    ("per_sample.scores", [0.5] * 15, "per_sample.scores has 15 entries, not one per training sample (16)"),
    ("protocol.hash", "0000000000000000", "protocol hash 0000000000000000 differs from the registered tiny v1"),
    ("protocol.version", 7, "protocol tiny v7 is not registered (registered: v1)"),
    ("protocol.name", "no-such-protocol", "unknown protocol 'no-such-protocol'"),
    ("schema_version", 99, "schema is echo-noise-bench/record v99"),
    ("status", "maybe", "status 'maybe' is neither ok nor failed"),
]


@pytest.mark.parametrize(("field", "value", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_impossible_value_is_caught(real_record, tmp_path, capsys, field, value, expected):
    _clean_set(tmp_path, real_record)
    broken = copy.deepcopy(real_record)
    broken["seed"] = 2
    _set(broken, field, value)
    bad = _write(tmp_path, broken, "broken.json")
    rc, problems = _validate(capsys, tmp_path)
    assert rc == 1
    assert problems and all(line.startswith(f"{bad}: ") for line in problems), problems
    assert any(expected in line for line in problems), problems


def test_flags_disagreeing_with_the_count_are_caught(real_record, tmp_path, capsys):
    broken = copy.deepcopy(real_record)
    broken["per_sample"]["flags"] = [1] * len(broken["per_sample"]["flags"])
    bad = _write(tmp_path, broken)
    rc, problems = _validate(capsys, bad)
    n = broken["metrics"]["detection"]["n_flagged"]
    assert rc == 1 and problems == [f"{bad}: per_sample.flags marks 16 samples but the record counts {n}"]


def test_duplicates_are_caught(real_record, tmp_path, capsys):
    first, _ = _clean_set(tmp_path, real_record)
    copy_path = _write(tmp_path / "elsewhere", real_record)
    rc, problems = _validate(capsys, tmp_path)
    assert rc == 1
    (line,) = problems
    # one of the two is reported, naming the other
    assert {line.split(": ")[0], line.split("duplicate of ")[1].split(" (")[0]} == {str(first), str(copy_path)}


def test_a_different_dataset_fingerprint_is_caught(real_record, tmp_path, capsys):
    _clean_set(tmp_path, real_record)
    other = copy.deepcopy(real_record)
    other["seed"], other["dataset"]["fingerprint"] = 5, "ffffffffffffffff"
    bad = _write(tmp_path, other)
    rc, problems = _validate(capsys, tmp_path)
    assert rc == 1
    (line,) = problems
    assert line.startswith(f"{bad}: dataset fingerprint ffffffffffffffff differs from {real_record['dataset']['fingerprint']}")


def test_unreadable_and_non_record_files_are_problems(real_record, tmp_path, capsys):
    _clean_set(tmp_path, real_record)
    (tmp_path / "half.json").write_text('{"schema": ')
    (tmp_path / "list.json").write_text("[1, 2]")
    rc, problems = _validate(capsys, tmp_path)
    assert rc == 1
    assert any(line.startswith(f"{tmp_path / 'half.json'}: is not JSON") for line in problems)
    assert f"{tmp_path / 'list.json'}: record is not a JSON object" in problems


def test_a_failed_record_is_valid(real_record, tmp_path, capsys):
    from bench.protocols import protocols
    from bench.runner import TrialSpec, failed_record

    record = failed_record(TrialSpec("tiny", "baseline", "none", 0), protocols.get("tiny"), RuntimeError("boom"))
    _write(tmp_path, json.loads(json.dumps(record)))
    assert _validate(capsys, tmp_path) == (0, [])


def test_a_missing_path_is_bad_usage(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"bench: error: no such file or folder: {tmp_path / 'nope'}"


def test_a_board_made_from_other_data_is_caught(real_record, tmp_path, capsys):
    """Records that agree with each other but not with the data this code builds for their protocol."""
    stale = copy.deepcopy(real_record)
    stale["dataset"]["fingerprint"] = "0123456789abcdef"
    first, _ = _clean_set(tmp_path, stale)
    rc, problems = _validate(capsys, tmp_path)
    assert rc == 1
    (line,) = problems
    assert line.startswith(f"{first}: dataset fingerprint 0123456789abcdef is not the {real_record['dataset']['fingerprint']}")
    assert "without a protocol version bump" in line


def test_a_dataset_that_needs_files_is_noted_as_unchecked_without_a_data_root(real_record, tmp_path, capsys):
    from bench.protocols import protocols

    camus = protocols.get("camus-cpu-v1")
    record = copy.deepcopy(real_record)
    record["protocol"] = {"name": camus.name, "version": camus.version, "hash": camus.hash}
    record["dataset"]["name"] = "camus"
    _write(tmp_path, record)
    rc, lines = _validate(capsys, tmp_path)
    assert rc == 0, lines
    (note,) = lines
    assert note.startswith("note: camus-cpu-v1 v1: dataset fingerprint not checked against the data (")
