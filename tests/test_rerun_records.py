"""studies/rerun_records.py: a record's trial rerun here reproduces every value; a record of another commit is refused."""

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "studies"))
import rerun_records  # noqa: E402

import bench  # noqa: E402
from bench.record import Record  # noqa: E402


def test_differences_are_the_paths_whose_values_differ_nan_equal_to_nan():
    a = {"x": 1.0, "y": math.nan, "z": 2, "only_a": 0}
    b = {"x": 1.0, "y": math.nan, "z": 3, "only_b": 0}
    assert rerun_records.differences(a, b) == ["only_a", "only_b", "z"]
    assert rerun_records.differences(a, a) == []


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    record = bench.run_trial("tiny", "loss-refurb", "systematic:0.5", seed=1)
    return record.write(tmp_path_factory.mktemp("records"))


def test_a_rerun_on_this_machine_reproduces_every_value(made, capsys):
    rerun_records.main([str(made)])
    line = capsys.readouterr().out.strip()
    assert line.endswith("values identical") and line.startswith(f"{made}: made on ")


def test_a_record_of_another_commit_is_refused(made, tmp_path):
    data = json.loads(made.read_text())
    data["provenance"]["git_commit"] = "0" * 40
    other = Record.from_dict(data).write(tmp_path)
    with pytest.raises(SystemExit, match="run from a worktree at 0000"):
        rerun_records.main([str(other)])


def test_a_record_whose_numbers_moved_is_reported_with_its_count(made, tmp_path, capsys):
    data = json.loads(made.read_text())
    data["metrics"]["final_train_loss"] *= 1 + 1e-12  # its last bits: not what the trial gives
    moved = Record.from_dict(data).write(tmp_path)
    rerun_records.main([str(moved)])
    out = capsys.readouterr().out
    assert ": 1 of " in out and out.strip().endswith("values differ; mean Dice +0.00000")
