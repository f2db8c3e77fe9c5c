"""One trial end to end on the tiny protocol: the record, its schema, determinism."""

import json

import numpy as np
import pytest

import bench
from bench.noise import apply_noise
from bench.record import Cell, Record
from bench.trial import protocol_data


@pytest.fixture(scope="module")
def loss_refurb_record():
    return bench.run_trial("tiny", "loss-refurb", "systematic:0.5", seed=0)


def test_record_schema_and_contents(loss_refurb_record):
    r = loss_refurb_record
    assert Record.problems(r.to_dict()) == []
    tiny = bench.protocols.get("tiny")
    assert r.protocol == {"name": "tiny", "version": tiny.version, "hash": tiny.hash}
    assert r.dataset["name"] == "echo-phantom" and len(r.dataset["fingerprint"]) == 16
    assert r.noise["n_corrupted"] == round(0.5 * r.dataset["n_train"])
    assert 0.0 < r.noise["mean_label_dice"] < 1.0
    assert set(r.metrics["dice"]) == {"lv", "myo", "la", "mean"}
    det = r.metrics["detection"]
    assert det["n_corrupted"] == r.noise["n_corrupted"]
    assert det["auroc"] is not None and 0.0 <= det["auroc"] <= 1.0
    refurb = r.metrics["refurbishment"]
    assert refurb["n_refurbished"] == det["n_flagged"]
    assert refurb["corrupted"]["n"] + refurb["clean"]["n"] == refurb["n_refurbished"]
    assert r.provenance["command"] == "bench run --protocol tiny --method loss-refurb --noise systematic:0.5 --seed 0"
    assert r.provenance["packages"]["torch"]
    json.dumps(r.to_dict())  # plain JSON


def test_same_trial_twice_gives_identical_metrics(loss_refurb_record):
    again = bench.run_trial("tiny", "loss-refurb", "systematic:0.5", seed=0)
    assert again.metrics == loss_refurb_record.metrics
    assert again.dataset == loss_refurb_record.dataset


def test_another_seed_gives_other_noise_and_numbers(loss_refurb_record):
    other = bench.run_trial("tiny", "baseline", "systematic:0.5", seed=1)
    assert other.metrics["dice"] != loss_refurb_record.metrics["dice"]
    assert other.metrics["detection"] is None and other.metrics["refurbishment"] is None


def test_a_noise_seed_draws_the_noise_of_that_seed_and_trains_with_the_other(loss_refurb_record):
    apart = bench.run_trial("tiny", "loss-refurb", "systematic:0.5", seed=1, noise_seed=0)
    trained_alike = bench.run_trial("tiny", "loss-refurb", "systematic:0.5", seed=1)
    assert apart.noise == {**loss_refurb_record.noise, "seed": 0}  # seed 0's noisy labels, and the record says so
    assert Record.problems(apart.to_dict()) == ["noise.seed = 0: its noise was drawn apart from its seed, so it is no board cell"]
    assert apart.noise["mean_label_dice"] != trained_alike.noise["mean_label_dice"]
    assert apart.metrics not in (loss_refurb_record.metrics, trained_alike.metrics)
    same = bench.run_trial("tiny", "loss-refurb", "systematic:0.5", seed=0, noise_seed=0)
    assert same.noise == loss_refurb_record.noise and same.metrics == loss_refurb_record.metrics


def test_noisy_training_labels_are_bit_identical_and_test_labels_untouched():
    parts = protocol_data(bench.protocols.get("tiny"))
    again = protocol_data(bench.protocols.get("tiny"))
    train = parts["train"]
    a = apply_noise("systematic:0.5", train.labels, train.spacing, train.ids, seed=0)
    b = apply_noise("systematic:0.5", again["train"].labels, again["train"].spacing, again["train"].ids, seed=0)
    assert a.labels.tobytes() == b.labels.tobytes()
    np.testing.assert_array_equal(parts["test"].labels, again["test"].labels)
    assert set(parts["test"].info["patient"]).isdisjoint(train.info["patient"])


def test_record_problems_catch_broken_records(loss_refurb_record):
    broken = loss_refurb_record.to_dict()
    broken["metrics"]["dice"]["lv"] = 1.5
    del broken["provenance"]["command"]
    broken["schema_version"] = 99
    problems = Record.problems(broken)
    assert any("metrics.dice.lv" in p for p in problems)
    assert any("provenance.command" in p for p in problems)
    assert any("schema is" in p for p in problems)
    assert Record.problems([]) == ["record is not a JSON object"]
    for loss, problem in ((-2.5, []), (float("inf"), ["metrics.final_train_loss = inf is not a finite loss"])):
        record = loss_refurb_record.to_dict()  # a negative log-likelihood (T-Loss) may be below 0; only non-finite is broken
        record["metrics"]["final_train_loss"] = loss
        assert Record.problems(record) == problem
    with pytest.raises(bench.BenchError, match=r"broken\.json is not a valid record: "):
        Record.from_dict(broken, "broken.json")


def test_a_record_round_trips_through_its_file_key_order_included(tmp_path, loss_refurb_record):
    path = loss_refurb_record.write(tmp_path)
    assert path == Cell("tiny", 1, "loss-refurb", "systematic:0.5", 0).path(tmp_path)
    assert path.relative_to(tmp_path).parts == ("tiny", "v1", "loss-refurb", "systematic-0.5", "seed0.json")
    assert Record.read(path) == loss_refurb_record
    on_disk = json.loads(path.read_text())
    assert list(on_disk) == [
        "schema", "schema_version", "status", "protocol", "dataset", "method", "noise", "seed", "metrics", "per_sample", "cost",
        "provenance",
    ]  # fmt: skip
    assert Record.read(path).to_json() == path.read_text()


def test_a_non_finite_training_loss_stops_the_trial():
    import dataclasses

    diverging = dataclasses.replace(bench.protocols.get("tiny"), name="diverging", lr=1e30)
    with pytest.raises(FloatingPointError, match="not finite at epoch"):
        bench.run_trial(diverging, "baseline", "none", seed=0)


def test_git_commit_marks_code_changes_but_not_records(tmp_path):
    import subprocess

    from bench.record import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "leaderboard").mkdir()
    (tmp_path / "leaderboard" / "seed0.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "leaderboard" / "seed0.json").unlink()  # a rerun replaces a record: still clean code
    assert git_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head + "+dirty"
