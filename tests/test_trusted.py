"""The trusted clean subset (issue 15, item 4): which samples, what the noise does to them, what records show and what
validation accepts; the two methods that use it, by hand (the conformal threshold, the interface shifts)."""

import copy
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hand_trials import FixedLogits

import bench
from bench.files import write_text_atomic
from bench.labelmaps import n_components
from bench.noise import apply_noise, grow, shrink
from bench.record import Cell, Record
from bench.trial import protocol_data, run_trial, trusted_mask, with_trusted
from bench.validate import check_records

NOISE = "systematic:0.5,mm=5"


def _plugin(name: str):
    """A plugin module, reached through the registry that loaded it."""
    import sys

    bench.methods.names()
    return next(m for k, m in sys.modules.items() if k.endswith(f".methods.{name}"))


# --------------------------------------------------------------------------- which samples are trusted


def _info(patients: int, images: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"patient": [f"patient{p:04d}" for p in range(patients) for _ in range(images)]})


def test_the_trusted_choice_is_whole_patients_deterministic_nested_and_per_seed():
    info = _info(10)
    masks = {n: trusted_mask(info, n, seed=3) for n in range(10)}
    for n, mask in masks.items():
        chosen = set(info["patient"][mask])
        assert len(chosen) == n and mask.sum() == 4 * n
        assert info["patient"].isin(chosen).to_numpy().tolist() == mask.tolist()  # all images of each chosen patient
        assert np.array_equal(trusted_mask(info, n, seed=3), mask)
        if n:
            assert not (masks[n - 1] & ~mask).any()  # nested: a larger count adds patients
    shuffled = info.iloc[::-1].reset_index(drop=True)  # the choice follows the patients, not the row order
    assert set(shuffled["patient"][trusted_mask(shuffled, 4, seed=3)]) == set(info["patient"][masks[4]])
    per_seed = {frozenset(info["patient"][trusted_mask(info, 3, seed=s)]) for s in range(8)}
    assert len(per_seed) > 1


@pytest.mark.parametrize("count", [-1, 10, 11])
def test_a_trusted_count_that_leaves_nothing_to_clean_is_refused(count):
    with pytest.raises(bench.BenchError, match="trusted_patients"):
        trusted_mask(_info(10), count, seed=0)


def test_zero_trusted_patients_changes_neither_the_hash_nor_the_noise():
    tiny = bench.protocols.get("tiny")
    assert "trusted_patients" not in tiny.settings()
    assert dataclasses.replace(tiny, trusted_patients=0).hash == tiny.hash
    assert dataclasses.replace(tiny, trusted_patients=1).hash != tiny.hash
    train = protocol_data(tiny)["train"]
    noisy = apply_noise(NOISE, train.labels, train.spacing, train.ids, 0, info=train.info)
    assert with_trusted(noisy, train.labels, trusted_mask(train.info, 0, 0)) is noisy


def test_trusted_labels_are_the_clean_ones_and_never_in_the_corrupted_truth():
    protocol = bench.protocols.get("tiny-trusted1")
    train = protocol_data(protocol)["train"]
    for seed in range(4):
        plain = apply_noise("systematic:0.75", train.labels, train.spacing, train.ids, seed, info=train.info)
        trusted = trusted_mask(train.info, protocol.trusted_patients, seed)
        noisy = with_trusted(plain, train.labels, trusted)
        assert trusted.sum() == 4
        assert np.array_equal(noisy.labels[trusted], train.labels[trusted])
        assert not noisy.corrupted[trusted].any() and not noisy.changed[trusted].any()
        assert np.array_equal(noisy.labels[~trusted], plain.labels[~trusted])  # the untrusted ones as in a plain run
        assert np.array_equal(noisy.corrupted[~trusted], plain.corrupted[~trusted])
        expected = round(0.75 * len(train))
        assert expected - trusted.sum() <= noisy.corrupted.sum() <= expected
        assert noisy.corrupted.sum() == (plain.corrupted & ~trusted).sum()


# --------------------------------------------------------------------------- records and validation


@pytest.fixture(scope="module")
def trusted_record() -> dict:
    return run_trial("tiny-trusted1", "loss-trusted-refurb", NOISE, 0).to_dict()


def _write(root: Path, record: dict) -> Path:
    p = record["protocol"]
    path = Cell(p["name"], p["version"], record["method"]["name"], record["noise"]["spec"], record["seed"]).path(root)
    write_text_atomic(path, json.dumps(record))
    return path


def test_a_trusted_record_shows_the_count_and_validates(trusted_record, tmp_path):
    record = trusted_record
    assert record["protocol"]["trusted_patients"] == 1 and record["dataset"]["n_trusted"] == 4
    trusted = np.array(record["per_sample"]["trusted"], bool)
    assert trusted.sum() == 4 and not np.array(record["per_sample"]["corrupted"], bool)[trusted].any()
    assert not np.array(record["per_sample"]["flags"], bool)[trusted].any()
    assert Record.problems(record) == []
    assert check_records([_write(tmp_path, record)]).problems == []


def test_a_plain_record_carries_no_trusted_keys():
    record = run_trial("tiny", "baseline", NOISE, 0).to_dict()
    assert set(record["protocol"]) == {"name", "version", "hash"} and "n_trusted" not in record["dataset"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r["protocol"].update(trusted_patients=2), "trusted_patients = 2"),
        (lambda r: r["protocol"].pop("trusted_patients"), "trusted_patients = 0"),
        (lambda r: r["dataset"].pop("n_trusted"), "per_sample.trusted"),
        (lambda r: r["per_sample"].pop("trusted"), "per_sample.trusted"),
        (lambda r: r["noise"].update(n_corrupted=r["noise"]["n_corrupted"] + 1), "noise.n_corrupted"),
    ],
)
def test_validation_refuses_an_edited_trusted_count(trusted_record, tmp_path, edit, expected):
    record = copy.deepcopy(trusted_record)
    edit(record)
    problems = [text for _, text in check_records([_write(tmp_path, record)]).problems]
    assert any(expected in text for text in problems), problems


def test_a_record_renamed_to_the_protocol_without_trusted_patients_is_refused(trusted_record, tmp_path):
    record = copy.deepcopy(trusted_record)
    record["protocol"]["name"] = "tiny"
    record["protocol"].pop("trusted_patients")
    problems = [text for _, text in check_records([_write(tmp_path, record)]).problems]
    assert any("protocol hash" in text for text in problems), problems


@pytest.mark.parametrize("method", ["spatial-correction", "loss-trusted-refurb"])
def test_a_method_that_needs_trusted_samples_fails_in_one_line_without_them(method):
    with pytest.raises(bench.BenchError, match="trusted_patients = 0: run it on a protocol that sets trusted_patients") as error:
        run_trial("tiny", method, NOISE, 0)
    assert "\n" not in str(error.value)


# --------------------------------------------------------------------------- the calibrated detector


def test_the_conformal_threshold_by_hand():
    threshold = _plugin("trusted_loss").conformal_threshold
    scores = np.arange(1.0, 20.0)  # 19 clean scores 1..19: k = ceil(20 x 0.95) = 19, the largest
    assert threshold(scores, 0.95) == 19.0
    assert threshold(scores, 0.5) == 10.0  # k = ceil(20 x 0.5) = 10
    assert threshold(np.arange(1.0, 5.0), 0.95) == math.inf  # 4 scores: k = 5 > 4, too few to bound 5%
    rng = np.random.default_rng(0)  # against the definition: the smallest score with at least k scores at or below it
    for n in (5, 24, 60):
        s = rng.normal(size=n)
        k = math.ceil((n + 1) * 0.9)
        assert threshold(s, 0.9) == min((v for v in s if (s <= v).sum() >= k), default=math.inf)


def _trial(labels: np.ndarray, trusted: np.ndarray, logits: torch.Tensor, spacing: float = 0.5) -> bench.Trial:
    n = len(labels)
    inputs = bench.TrialInputs(
        protocol=bench.protocols.get("tiny-trusted1"),
        seed=0,
        images=torch.zeros(n, 1, *labels.shape[1:]),
        given=labels.astype(np.uint8),
        ids=tuple(f"s{i}" for i in range(n)),
        info=None,
        label_set=bench.CAMUS_LABELS,
        device=torch.device("cpu"),
        spacing=np.full((n, 2), spacing),
        trusted=trusted,
    )
    trial = bench.Trial(inputs, torch.from_numpy(labels.astype(np.int64)), torch.ones(n), torch.Generator())
    trial._model = FixedLogits(logits)
    return trial


def test_the_calibrated_detector_never_flags_trusted_samples():
    detector = bench.detectors.get("loss-trusted")(window=1, q=0.95)
    labels = np.zeros((24, 4, 4), np.uint8)
    trusted = np.zeros(24, bool)
    trusted[:19] = True
    trial = _trial(labels, trusted, torch.zeros(4, 4, 4))
    scores = np.concatenate([np.arange(1.0, 20.0), [18.0, 19.0, 19.5, 30.0, 0.5]])
    assert detector.flag(scores, trial).tolist() == [False] * 21 + [True, True, False]
    with pytest.raises(RuntimeError, match="trusted_patients"):
        detector.flag(scores, _trial(labels, np.zeros(24, bool), torch.zeros(4, 4, 4)))


# --------------------------------------------------------------------------- spatial correction


def _heart(size: int = 64) -> np.ndarray:
    """A hand-made CAMUS-like map: LV disc (1) inside a myocardial ring (2), an atrium (3) below, on background."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - 28, xx - 32)
    label = np.zeros((size, size), np.uint8)
    label[r < 17] = 2
    label[r < 10] = 1
    label[(np.hypot(yy - 52, xx - 32) < 8) & (label == 0)] = 3
    return label


@pytest.mark.parametrize(
    ("value", "op", "mm", "pair", "shift"),
    [
        (1, grow, 2.0, (1, 2), -2.0),  # LV drawn 2 mm too large into the wall -> move the endocardium back 2 mm
        (1, shrink, 1.5, (1, 2), 1.5),
        (2, grow, 1.0, (0, 2), 1.0),  # wall 1 mm too thick outwards -> background takes 1 mm back
        (3, shrink, 2.5, (0, 3), -2.5),
    ],
)
def test_the_interface_shift_recovers_a_known_radius(value, op, mm, pair, shift):
    sc = _plugin("spatial_correction")
    clean = _heart()
    spacing = np.array([0.5, 0.5])
    pred = op(clean, value, mm, spacing)  # what a model biased by `mm` predicts (bench.noise's own operators)
    shifts = sc.estimate_shifts(pred[None], clean[None], spacing[None], 4)
    assert shifts[pair] == shift and all(t == 0 for p, t in shifts.items() if p != pair)
    moved = sc.apply_shifts(pred[None], spacing[None], shifts)[0]
    assert (moved != clean).mean() < (pred != clean).mean() / 4


def test_the_shift_grid_is_brute_force_optimal():
    """Against brute force: every candidate map built and counted, for one interface on random blobs."""
    sc = _plugin("spatial_correction")
    rng = np.random.default_rng(1)
    clean = _heart()[None].repeat(3, 0)
    pred = np.stack([grow(c, 1, float(rng.uniform(0.5, 3)), np.array([0.5, 0.5])) for c in clean])
    spacing = np.full((3, 2), 0.5)
    shifts = sc.estimate_shifts(pred, clean, spacing, 2, max_mm=4.0, step_mm=0.5)  # classes 0, 1 only: one interface
    grid = np.arange(-8, 9) * 0.5
    agree = {t: (sc.move_interface(pred, 0, 1, t, spacing) == clean).sum() for t in grid}
    best = max(agree.values())
    assert shifts[0, 1] == min((t for t in grid if agree[t] == best), key=lambda t: (abs(t), t))


def test_spatial_correction_relabels_untrusted_samples_validly_and_leaves_trusted_ones():
    clean = _heart()
    spacing = np.array([0.5, 0.5])
    biased = grow(clean, 1, 2.0, spacing)  # the model predicts the LV 2 mm too large, on every image
    logits = torch.from_numpy(np.eye(4, dtype=np.float32)[biased].transpose(2, 0, 1) * 10)  # confident
    noisy = grow(clean, 1, 3.0, spacing)
    labels = np.stack([clean, clean, noisy, noisy, clean])
    trusted = np.array([True, True, False, False, False])
    trial = _trial(labels, trusted, logits)
    corrector = bench.correctors.get("spatial")(start=0.5, every=0.25, times=3)
    trial.history._losses = [np.zeros(5)]  # after epoch 1 of tiny's 2: the schedule's first correction
    new = corrector.correct(trial).numpy()
    assert corrector.estimates[0][1][1, 2] == -2.0
    assert np.array_equal(new[:2], labels[:2])  # trusted labels never change
    for label in new[2:]:
        assert np.array_equal(label, bench.make_valid(label, label))  # a fixed point of the repair: valid
        assert all(n_components(label == v) == 1 for v in (1, 2, 3))
        assert (label != clean).mean() < (noisy != clean).mean() / 4
    trial.history._losses = [np.zeros(5)] * 2  # after the last epoch: no correction
    assert corrector.correct(trial) is None


def test_the_correction_schedule():
    epochs = _plugin("spatial_correction").correction_epochs
    assert epochs(12, 0.5, 0.25, 3) == [6, 9]
    assert epochs(100, 0.5, 0.25, 3) == [50, 75]
    assert epochs(100, 0.5, 0.1, 3) == [50, 60, 70]
    assert epochs(2, 0.5, 0.25, 3) == [1]
