"""Metrics against independent truth: hand-computed cases and brute-force definitions."""

import itertools

import numpy as np
import pytest

from bench.flagging import mixture_flags
from bench.metrics import auroc, average_precision, detection_summary, dice_per_structure, segmentation_summary


def test_dice_hand_computed_and_empty_cases():
    truth = np.zeros((3, 4, 4), np.uint8)
    pred = np.zeros((3, 4, 4), np.uint8)
    truth[0, :2, :2] = 1  # 4 px
    pred[0, :2, :1] = 1  # 2 px, all inside: Dice = 2*2/(4+2)
    truth[1, 0, 0] = 2  # myo only in truth: Dice 0
    # image 2: everything empty: Dice 1 for every structure
    d = dice_per_structure(pred, truth)
    assert d["lv"] == pytest.approx([4 / 6, 1.0, 1.0])
    assert d["myo"] == pytest.approx([1.0, 0.0, 1.0])
    assert d["la"] == pytest.approx([1.0, 1.0, 1.0])
    s = segmentation_summary(pred, truth)
    assert s["mean"] == pytest.approx(np.mean([s["lv"], s["myo"], s["la"]]))
    assert not any(np.isnan(v) for v in s.values())


def brute_auroc(scores, positive):
    pairs = list(itertools.product(scores[positive], scores[~positive]))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_the_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, 40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    assert auroc(scores, positive) == pytest.approx(brute_auroc(scores, positive))


def test_auroc_and_ap_edge_cases():
    s = np.array([0.9, 0.8, 0.1])
    assert auroc(s, np.array([True, True, True])) is None
    assert average_precision(s, np.zeros(3, bool)) is None
    # ranking P N P: precision at hits 1/1 and 2/3 -> AP = (1 + 2/3) / 2
    assert average_precision(np.array([3.0, 2.0, 1.0]), np.array([True, False, True])) == pytest.approx((1 + 2 / 3) / 2)


def test_detection_summary_hand_computed():
    corrupted = np.array([True, True, False, False, False])
    flags = np.array([True, False, True, False, False])
    scores = np.array([0.9, 0.5, 0.8, 0.1, 0.2])
    d = detection_summary(scores, flags, corrupted)
    assert (d["precision"], d["recall"], d["f1"]) == (0.5, 0.5, 0.5)
    assert d["precision_at_budget"] == 0.5  # top-2 by score: samples 0 and 2
    assert d["auroc"] == pytest.approx(brute_auroc(scores, corrupted))


def test_mixture_flags_finds_the_high_cluster():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(1.0, 0.1, 80), rng.normal(3.0, 0.2, 20)])
    flags = mixture_flags(x)
    assert flags[80:].all() and not flags[:80].any()
    assert not mixture_flags(np.full(10, 2.0)).any()
