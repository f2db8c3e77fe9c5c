"""SELFIE per pixel against hand-made histories: the uncertainty formula by hand, consistent pixels take the majority and
inconsistent ones keep their label, unflagged samples never change, the ring keeps exactly the last q epochs, the
output is a valid label map, and q = 1 reduces to the current model's prediction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hand_trials import FixedLogits, block_label, hand_trial

import bench
from bench.labelmaps import topology
from bench.plugins import plugin_module

SELFIE = plugin_module("methods", "selfie")


def one_hot_logits(classes: np.ndarray, strength: float = 5.0) -> torch.Tensor:
    """Logits (4, H, W) whose argmax is `classes` (H, W)."""
    out = torch.zeros(4, *classes.shape)
    out.scatter_(0, torch.from_numpy(classes.astype(np.int64))[None], strength)
    return out


def run_epochs(refurbisher, trial: bench.Trial, model: FixedLogits, predictions: list[np.ndarray]) -> None:
    """Emulate the loop: after each epoch the model predicts `predictions[e]`, the history grows, the refurbisher watches."""
    for classes in predictions:
        with torch.no_grad():
            model.logits.copy_(one_hot_logits(classes))
        trial.history.append(np.zeros(trial.n), np.zeros((trial.n, 3, 3), np.int64), np.full(trial.n, np.nan))
        refurbisher.on_epoch_end(trial)


def test_uncertainty_is_the_normalised_entropy_of_the_history_by_hand():
    # one pixel each: histories of 4 predictions
    hist = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 2], [0, 1, 2, 3], [2, 2, 3, 3]], dtype=torch.uint8)  # (pixels, L)
    history = hist.T.reshape(1, 4, 1, 4)  # (K=1, L=4, H=1, W=4)
    majority, u = SELFIE.history_vote(history, 4)
    by_hand = [
        0.0,  # unanimous
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4),  # 0.4056
        1.0,  # uniform over the 4 classes
        math.log(2) / math.log(4),  # two classes, half each: 0.5
    ]
    np.testing.assert_allclose(u[0, 0].numpy(), by_hand, atol=1e-12)
    assert abs(by_hand[1] - 0.40564) < 1e-4
    assert majority[0, 0].tolist() == [1, 1, 0, 2]  # ties go to the lowest class


def test_one_dissenting_vote_in_fifteen_is_already_above_the_papers_epsilon():
    hist = torch.full((1, 15, 1, 1), 2, dtype=torch.uint8)
    hist[0, 3] = 0
    _, u = SELFIE.history_vote(hist, 4)
    p = np.array([14 / 15, 1 / 15])
    assert math.isclose(float(u), -(p * np.log(p)).sum() / math.log(4), rel_tol=1e-12)
    assert 0.17 < float(u) < 0.18 and float(u) > 0.05


def test_consistent_pixels_take_the_majority_inconsistent_ones_and_unflagged_samples_stay():
    lab = block_label()
    strip = np.zeros_like(lab, dtype=bool)
    strip[6:14, 14:16] = True  # a 2-px strip of LV at its right edge, which every epoch predicts as myocardium
    doubt = np.zeros_like(lab, dtype=bool)
    doubt[6:14, 8:10] = True  # a strip of LV at its left edge, predicted myocardium in only 2 of 3 epochs
    consistent = np.where(strip, 2, lab)
    wavering = np.where(strip | doubt, 2, lab)
    labels = np.stack([lab, lab])
    model = FixedLogits(torch.zeros(4, 24, 24))
    trial = hand_trial(model, labels, detect_epoch=3)
    refurbisher = bench.refurbishers.get("selfie")(q=3)
    run_epochs(refurbisher, trial, model, [wavering, consistent, wavering])
    result = refurbisher.refurbish(trial, np.array([True, False]))
    assert result.index.tolist() == [0]  # the unflagged sample is not acted on at all
    new = result.labels[0].numpy()
    np.testing.assert_array_equal(new != lab, strip)  # only the strip changed: the doubted pixels kept their label
    assert (new[strip] == 2).all()  # to the history's (unanimous) majority
    assert refurbisher.refurbish(trial, np.zeros(2, bool)).index.size == 0


def test_the_ring_keeps_exactly_the_last_q_epochs_from_detect_epoch_minus_q_plus_1():
    lab = np.zeros((1, 4, 4), np.uint8)
    model = FixedLogits(torch.zeros(4, 4, 4))
    trial = hand_trial(model, lab, detect_epoch=5)
    refurbisher = bench.refurbishers.get("selfie")(q=2)
    seen = []
    for epoch in range(1, 8):  # epoch e predicts class e % 4 everywhere
        with torch.no_grad():
            model.logits.copy_(one_hot_logits(np.full((4, 4), epoch % 4)))
        trial.history.append(np.zeros(1), np.zeros((1, 3, 3), np.int64), np.full(1, np.nan))
        refurbisher.on_epoch_end(trial)
        seen.append(refurbisher.recorded)
        if epoch == 5:
            at_detection = sorted(set(refurbisher.history(torch.tensor([0])).flatten().tolist()))
    assert seen == [0, 0, 0, 1, 2, 3, 4]  # recorded from detect_epoch - q + 1 = 4 on
    assert at_detection == [0, 1]  # epochs 4 and 5: classes 0 and 1
    assert sorted(set(refurbisher.history(torch.tensor([0])).flatten().tolist())) == [2, 3]  # epochs 6 and 7
    assert refurbisher.buffer.dtype == torch.uint8 and tuple(refurbisher.buffer.shape) == (1, 2, 4, 4)  # N x q x H x W bytes


def test_with_a_history_of_one_it_is_the_current_prediction_made_valid():
    """q = 1: every pixel's history is consistent, so the label becomes make_valid(label, argmax of the model)."""
    data = bench.load_dataset("echo-phantom", size=64, patients=3)
    labels = data.labels[:6]
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(0, 4, (4, 64, 64))).float()
    trial = hand_trial(FixedLogits(logits), labels, detect_epoch=1)
    refurbisher = bench.refurbishers.get("selfie")(q=1)
    trial.history.append(np.zeros(6), np.zeros((6, 3, 3), np.int64), np.full(6, np.nan))
    refurbisher.on_epoch_end(trial)
    new = refurbisher.refurbish(trial, np.ones(6, bool)).labels.numpy()
    pred = logits.argmax(0).numpy().astype(np.uint8)
    expected = np.stack([bench.make_valid(lab, pred, bench.CAMUS_LABELS) for lab in labels])
    np.testing.assert_array_equal(new, expected)


def test_refurbished_labels_are_valid_label_maps():
    """Random, changing predictions on phantom labels: values 0..3, one component per structure, no hole in the heart."""
    data = bench.load_dataset("echo-phantom", size=64, patients=3)
    labels = data.labels[:6]
    rng = np.random.default_rng(1)
    base = rng.integers(0, 4, (64, 64))
    model = FixedLogits(torch.zeros(4, 64, 64))
    trial = hand_trial(model, labels, detect_epoch=3)
    refurbisher = bench.refurbishers.get("selfie")(q=3)
    # three epochs that agree on most pixels (base) and waver on a random tenth
    run_epochs(refurbisher, trial, model, [np.where(rng.random((64, 64)) < 0.1, rng.integers(0, 4, (64, 64)), base) for _ in range(3)])
    new = refurbisher.refurbish(trial, np.ones(6, bool)).labels.numpy()
    assert (new != labels).any()  # the noisy history does change labels
    for before, after in zip(labels, new, strict=True):
        assert after.min() >= 0 and after.max() <= 3
        comps, holes = topology(after.astype(np.uint8))
        clean_comps, clean_holes = topology(before)
        assert all(c <= 1 for c, cc in zip(comps[:3], clean_comps[:3], strict=True) if cc <= 1)
        assert holes[3] == 0 or clean_holes[3] > 0


def test_recipe_and_parameters():
    recipe = bench.methods.get("selfie")
    assert (recipe.detector, recipe.refurbisher, recipe.detect_at, recipe.refurbish_every) == ("loss", "selfie", 0.5, 1)
    assert recipe.refurbisher_params == {"q": 15, "epsilon": 0.05}
    with pytest.raises(ValueError, match="q"):
        bench.refurbishers.get("selfie")(q=0)
    with pytest.raises(ValueError, match="epsilon"):
        bench.refurbishers.get("selfie")(epsilon=1.0)
    with pytest.raises(RuntimeError, match="no prediction"):
        trial = hand_trial(FixedLogits(torch.zeros(4, 4, 4)), np.zeros((1, 4, 4), np.uint8), detect_epoch=1)
        bench.refurbishers.get("selfie")().refurbish(trial, np.ones(1, bool))
