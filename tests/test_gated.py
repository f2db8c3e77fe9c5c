"""Confidence-gated refurbishment against hand-made cases: only confident pixels change, the result is a valid label
map, the temporal teacher averages exactly its window, flip averaging mirrors, and a repeated schedule repeats."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hand_trials import FixedLogits, block_label, hand_trial

import bench
from bench.labelmaps import topology
from bench.plugins import plugin_module

GATED = plugin_module("methods", "gated")


def trial_with(model: torch.nn.Module, labels: np.ndarray, detect_epoch: int = 1) -> bench.Trial:
    return hand_trial(model, labels, detect_epoch)


def logits_of(probs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.log(np.clip(probs, 1e-9, None))).float()


def test_gate_hand_computed():
    labels = torch.tensor([[[0, 1], [2, 3]]])
    probs = torch.zeros(1, 4, 2, 2)
    probs[0, :, 0, 0] = torch.tensor([0.02, 0.95, 0.02, 0.01])  # label 0, class 1 at 0.95 > 0.9: becomes 1
    probs[0, :, 0, 1] = torch.tensor([0.85, 0.05, 0.05, 0.05])  # label 1, class 0 at 0.85: stays 1
    probs[0, :, 1, 0] = torch.tensor([0.01, 0.01, 0.97, 0.01])  # label 2 is the confident class: stays 2
    probs[0, :, 1, 1] = torch.tensor([0.91, 0.03, 0.03, 0.03])  # label 3, class 0 at 0.91: becomes 0
    assert GATED.gate(labels, probs, 0.9).tolist() == [[[1, 1], [2, 0]]]
    assert GATED.gate(labels, probs, 0.96).tolist() == [[[0, 1], [2, 3]]]  # nothing clears 0.96 but a pixel's own label


def test_only_pixels_above_the_threshold_change_and_unflagged_samples_are_untouched():
    lab = block_label()
    probs = np.zeros((4, 24, 24))
    probs[lab, np.arange(24)[:, None], np.arange(24)[None, :]] = 1.0  # the model agrees with the label ...
    probs[:, 6:14, 14:16] = 0.0
    probs[2, 6:14, 14:16] = 0.95  # ... except a 2-px strip of LV it is sure is myocardium (the cavity shrinks)
    probs[1, 6:14, 14:16] = 0.05
    probs[:, 6:14, 8:10] = 0.0
    probs[2, 6:14, 8:10], probs[1, 6:14, 8:10] = 0.8, 0.2  # and a strip it doubts, below the gate
    labels = np.stack([lab, lab])
    trial = trial_with(FixedLogits(logits_of(probs)), labels)
    result = bench.refurbishers.get("gated")(threshold=0.9).refurbish(trial, np.array([True, False]))
    assert result.index.tolist() == [0]
    new = result.labels[0].numpy()
    changed = new != lab
    assert changed.any() and (changed == ((np.arange(24)[None, :] >= 14) & (np.arange(24)[None, :] < 16) & (lab == 1))).all()
    assert (new[changed] == 2).all()


def test_refurbished_labels_are_valid_label_maps():
    """Random confident logits on phantom labels: values 0..3, one component per structure, no hole in the heart."""
    data = bench.load_dataset("echo-phantom", size=64, patients=3)
    labels = data.labels[:6]
    rng = np.random.default_rng(0)
    trial = trial_with(FixedLogits(torch.from_numpy(rng.normal(0, 4, (4, 64, 64))).float()), labels)
    new = bench.refurbishers.get("gated")(threshold=0.6).refurbish(trial, np.ones(6, bool)).labels.numpy()
    assert (new != labels).any()  # the random teacher does change labels
    for before, after in zip(labels, new, strict=True):
        assert after.min() >= 0 and after.max() <= 3
        comps, holes = topology(after.astype(np.uint8))
        clean_comps, clean_holes = topology(before)
        assert all(c <= 1 for c, cc in zip(comps[:3], clean_comps[:3], strict=True) if cc <= 1)
        assert holes[3] == 0 or clean_holes[3] > 0


def test_the_temporal_teacher_averages_exactly_its_window():
    lab = np.zeros((1, 4, 4), np.uint8)
    model = FixedLogits(torch.zeros(4, 4, 4))
    trial = trial_with(model, lab, detect_epoch=4)
    refurbisher = bench.refurbishers.get("gated")(teacher="temporal", window=2)
    seen = []
    for epoch in range(1, 5):
        with torch.no_grad():
            model.logits.zero_()
            model.logits[1] = float(epoch)  # class 1's logit grows each epoch
        trial.history.append(np.zeros(1), np.zeros((1, 3, 3), np.int64), np.full(1, np.nan))
        refurbisher.on_epoch_end(trial)
        seen.append(len(refurbisher.recent))
    assert seen == [0, 0, 1, 2]  # recorded from detect_epoch - window + 1 = 3 on, the last 2 kept
    expected = np.mean([np.exp(e) / (np.exp(e) + 3) for e in (3, 4)])
    np.testing.assert_allclose(torch.stack(refurbisher.recent).mean(0)[0, 1].numpy(), expected, rtol=1e-6)


def test_flip_averaging_mirrors_the_prediction():
    ramp = torch.linspace(-3, 3, 6).view(1, 1, 6).expand(4, 6, 6).clone()
    ramp[0] = 0.0
    model = FixedLogits(ramp)
    trial = trial_with(model, np.zeros((1, 6, 6), np.uint8))
    plain = bench.refurbishers.get("gated")().probabilities(trial, trial.images)
    flipped = bench.refurbishers.get("gated")(tta="flip").probabilities(trial, trial.images)
    torch.testing.assert_close(flipped, (plain + plain.flip(-1)) / 2)
    torch.testing.assert_close(flipped, flipped.flip(-1))  # a mirror-averaged prediction is mirror-symmetric


def test_a_repeated_schedule_refurbishes_again_every_k_epochs(monkeypatch):
    from bench.noise import apply_noise
    from bench.training import fit
    from bench.trial import initial_trial, protocol_data

    protocol = dataclasses.replace(bench.protocols.get("tiny"), name="tiny-7", epochs=7)
    train = protocol_data(protocol)["train"]
    noisy = apply_noise("systematic:0.5", train.labels, train.spacing, train.ids, 0, info=train.info)
    recipe = bench.Recipe(name="oracle-gated-again", description="test only", detector="oracle", refurbisher="gated",
                          detect_at=0.3, refurbish_every=2)  # fmt: skip
    calls = []
    original = GATED.GatedRefurbisher.refurbish

    def counted(self, trial, flags):
        calls.append(trial.epoch)
        return original(self, trial, flags)

    monkeypatch.setattr(GATED.GatedRefurbisher, "refurbish", counted)
    result = fit(initial_trial(protocol, 0, train, noisy, recipe), recipe)
    assert calls == [2, 4, 6]  # detection after epoch round(0.3 x 7) = 2, then every 2 epochs
    np.testing.assert_array_equal(result.refurbished, noisy.corrupted)
    assert recipe.describe()["refurbish_every"] == 2 and "refurbish_every" not in bench.methods.get("loss-refurb").describe()
    with pytest.raises(ValueError, match="refurbish_every"):
        bench.Recipe(name="x", description="x", refurbish_every=2)
