"""`bench validate`: a clean record set passes; every kind of problem is caught, one line per problem."""

import copy
import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.files import write_text_atomic
from bench.record import Cell
from bench.trial import run_trial


@pytest.fixture(scope="module")
def real_record() -> dict:
    """One real tiny trial with a detector and a refurbisher (detection, refurbishment and per-sample sections filled)."""
    return run_trial("tiny", "loss-refurb", "systematic:0.5", 0).to_dict()


def _write(root: Path, record: dict, name: str | None = None) -> Path:
    """Write a record's JSON (valid or tampered) where `bench run` would, or as `name`."""
    p = record["protocol"]
    cell = Cell(p["name"], p["version"], record["method"]["name"], record["noise"]["spec"], record["seed"])
    path = root / name if name else cell.path(root)
    write_text_atomic(path, json.dumps(record, indent=2))
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
    """record[a][b][0] = value for "a.b.0" (digits index lists)."""
    *parents, leaf = (int(k) if k.isdigit() else k for k in dotted.split("."))
    for key in parents:
        record = record[key]
    record[leaf] = value


BROKEN = [
    ("metrics.dice.lv", 1.2, "metrics.dice.lv = 1.2 is not in [0, 1]"),
    ("metrics.hd95.myo", -1.0, "metrics.hd95.myo = -1.0 is not a finite distance"),
    ("cost.wall_s", -3.0, "cost.wall_s = -3.0 is not a finite non-negative time"),
    ("cost.forward_macs", 1.5e9, "cost.forward_macs = 1500000000.0 is not a non-negative whole number of multiply-accumulates"),
    ("cost.backward_macs", -1, "cost.backward_macs = -1 is not a non-negative whole number of multiply-accumulates"),
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
    # found by an adversarial pass over `bench validate` (issue 13)
    ("seed", -1, "seed -1 is negative"),
    ("method.name", "no-such-method", "unknown method 'no-such-method' (not registered here"),
    ("noise.spec", "systematic:abc", "noise spec does not parse: noise spec 'systematic:abc': level 'abc' is not a number"),
    ("noise.spec", "systematic:0.50", "noise spec 'systematic:0.50' is not written canonically ('systematic:0.5')"),
    ("noise.level", 0.25, "noise.n_corrupted = 8 is not round(level x n_train) = 4"),
    ("noise.params.mm", 5.0, "noise.params = {'structure': 'lv', 'direction': 'dilate', 'mm': 5.0} does not match its spec"),
    ("per_sample.scores.0", float("nan"), "per_sample.scores holds values that are not finite numbers"),
    ("per_sample.scores.1", "high", "per_sample.scores holds values that are not finite numbers"),
    ("per_sample.flags.0", True, "per_sample.flags holds values other than 0 and 1"),
    ("metrics.epi.dice", 1.2, "metrics.epi.dice = 1.2 is not in [0, 1]"),
    ("metrics.clinical.ef_abs_error_mean", -1.0, "metrics.clinical.ef_abs_error_mean = -1.0 is not a finite non-negative error"),
    ("metrics.clinical.ef_bias", 1000.0, "metrics.clinical.ef_bias = 1000.0 is larger than the mean absolute error"),
    ("metrics.clinical.n_failed", 99, "metrics.clinical.n_failed = 99 is more than metrics.clinical.n_patients"),
    ("metrics.dice.mean", 0.999, "metrics.dice.mean = 0.999 is not the mean of its structures"),
    ("metrics.hd.lv", 0.0, "metrics.hd.lv = 0.0 is smaller than hd95"),
    ("metrics.dice", {}, "metrics.dice = {} is not a table of numbers per structure"),
    ("metrics.dice", None, "metrics.dice = None is not a table of numbers per structure"),
    ("metrics.hd95", [1.0, 2.0], "metrics.hd95 = [1.0, 2.0] is not a table of numbers per structure"),
    ("metrics.msd", {"lv": 1.0, "mean": 1.0}, "metrics.msd names ['lv', 'mean'], not dice's"),
    ("metrics.missed.la", 99, "metrics.missed.la = 99 is more than dataset.n_test = 8"),
    ("extra", {"note": "hi"}, "unknown key 'extra'"),
    ("error", "RuntimeError: boom", "an ok record has no 'error' or 'traceback'"),
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


def test_a_failed_record_without_its_error_is_caught(real_record, tmp_path, capsys):
    from bench.protocols import protocols
    from bench.runner import TrialSpec, failed_record

    record = failed_record(TrialSpec("tiny", "baseline", "none", 0), protocols.get("tiny"), RuntimeError("boom")).to_dict()
    del record["error"]
    bad = _write(tmp_path, record)
    assert _validate(capsys, bad) == (1, [f"{bad}: a failed record must say why in 'error'"])


def test_a_record_filed_under_another_seed_or_cell_is_caught(real_record, tmp_path, capsys):
    moved = _write(tmp_path, real_record, "seed3.json")
    assert _validate(capsys, moved) == (1, [f"{moved}: the file is named for seed 3 but holds seed 0"])
    other = tmp_path / "tiny" / "v1" / "baseline" / "systematic-0.5" / "seed0.json"
    _write(tmp_path, real_record, str(other.relative_to(tmp_path)))
    rc, problems = _validate(capsys, other)
    assert rc == 1 and problems == [
        f"{other}: the file sits at tiny/v1/baseline/systematic-0.5/seed0.json but holds tiny/v1/loss-refurb/systematic-0.5/seed0.json; "
        "move it there"
    ]


def test_a_folder_without_records_is_bad_usage(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error: no record files (*.json) under ") and len(err.splitlines()) == 1


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


def test_a_board_holds_records_of_one_device_kind(real_record, tmp_path, capsys):
    _clean_set(tmp_path, real_record)
    gpu = copy.deepcopy(real_record)
    gpu["seed"] = 2
    gpu["provenance"]["device"] = {**gpu["provenance"]["device"], "kind": "cuda", "gpu": "NVIDIA H200"}
    bad = _write(tmp_path, gpu)
    rc, problems = _validate(capsys, tmp_path)
    assert rc == 1
    (line,) = problems
    assert line.startswith(f"{bad}: made on cuda, but ") and "of the same protocol version on cpu: a board holds records of one" in line


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

    failed_record(TrialSpec("tiny", "baseline", "none", 0), protocols.get("tiny"), RuntimeError("boom")).write(tmp_path)
    assert _validate(capsys, tmp_path) == (0, [])


def test_a_missing_path_is_bad_usage(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"bench: error: no such file or folder: {tmp_path / 'nope'}; give folders or files of records"


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

    camus = protocols.get("camus-cpu-v1@v1")  # generation 1, the recipe of the real tiny record
    record = copy.deepcopy(real_record)
    record["protocol"] = {"name": camus.name, "version": camus.version, "hash": camus.hash}
    record["dataset"]["name"] = "camus"
    _write(tmp_path, record)
    rc, lines = _validate(capsys, tmp_path)
    assert rc == 0, lines
    (note,) = lines
    assert note.startswith("note: camus-cpu-v1 v1: dataset fingerprint not checked against the data (")
