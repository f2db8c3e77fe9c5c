"""The VOG detector: batched input gradients, the variance aggregation, group normalisation, detection quality.

The detector is reached through the registry (`bench.detectors.get("vog")`), its module's functions through the
public plugin loader (`bench.plugins.plugin_module`), never by importing the plugin file by path.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import bench
from bench.plugins import plugin_module

VOG = bench.detectors.get("vog")
VOG_MODULE = plugin_module("methods", "vog")
TINY = bench.protocols.get("tiny")
SIZE = 32  # small images keep the float64 checks quick; the U-Net needs a multiple of 32


@pytest.fixture(scope="module")
def double_model() -> torch.nn.Module:
    """The tiny protocol's U-Net in float64, with non-trivial BatchNorm running statistics."""
    torch.manual_seed(0)
    model = bench.build_model(TINY).double()
    model.train()
    with torch.no_grad():
        model(torch.rand(6, 1, SIZE, SIZE, dtype=torch.float64))
    return model


def picked_logit_sum(model: torch.nn.Module, image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """f(x) = sum over pixels of the logit of each pixel's label, for one sample (1, 1, H, W), eval mode."""
    logits = model(image)[0]
    return logits.gather(0, label.unsqueeze(0)).sum()


def test_batched_gradients_equal_a_per_sample_loop_in_float64(double_model):
    rng = torch.Generator().manual_seed(1)
    images = torch.rand(3, 1, SIZE, SIZE, dtype=torch.float64, generator=rng)
    labels = torch.randint(0, bench.NUM_CLASSES, (3, SIZE, SIZE), generator=rng)
    det = VOG()
    double_model.train()
    batched = det.input_gradients(double_model, images, labels)
    assert batched.shape == (3, SIZE, SIZE) and batched.dtype == torch.float64
    # the model is left as found: training mode, parameters trainable, no parameter gradients accumulated
    assert double_model.training
    assert all(p.requires_grad and p.grad is None for p in double_model.parameters())

    double_model.eval()
    for i in range(len(images)):  # brute force: one sample at a time, plain autograd
        x = images[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(picked_logit_sum(double_model, x, labels[i]), x)
        torch.testing.assert_close(batched[i], g[0, 0], rtol=1e-10, atol=1e-12)

    # and it is the derivative of the right quantity: a central finite difference along a random direction
    v = torch.randn(1, 1, SIZE, SIZE, dtype=torch.float64, generator=rng)
    eps = 1e-6
    with torch.no_grad():
        f_plus = picked_logit_sum(double_model, images[:1] + eps * v, labels[0])
        f_minus = picked_logit_sum(double_model, images[:1] - eps * v, labels[0])
    fd = (f_plus - f_minus) / (2 * eps)
    torch.testing.assert_close((batched[0] * v[0, 0]).sum(), fd, rtol=1e-5, atol=1e-7)
    double_model.train()


def test_foreground_region_ignores_background_pixels(double_model):
    images = torch.rand(2, 1, SIZE, SIZE, dtype=torch.float64)
    background = torch.zeros(2, SIZE, SIZE, dtype=torch.int64)
    assert VOG(region="foreground").input_gradients(double_model, images, background).abs().max() == 0
    assert VOG(region="all").input_gradients(double_model, images, background).abs().max() > 0


def test_identical_gradients_at_every_checkpoint_give_zero_vog():
    det = VOG()
    g = torch.randn(6, 8, 8, dtype=torch.float64)
    for _ in range(4):
        det.update(g)
    np.testing.assert_allclose(det.vog(), 0.0, atol=1e-12)


def test_vog_of_known_synthetic_gradients():
    # sample i has maps 0, a_i, 2 a_i everywhere: population std over the checkpoints is |a_i| sqrt(2/3)
    a = torch.tensor([0.0, 1.0, -3.0, 0.5], dtype=torch.float64)
    det = VOG()
    for t in range(3):
        det.update(t * a.view(-1, 1, 1).expand(4, 5, 7))
    np.testing.assert_allclose(det.vog(), np.abs(a.numpy()) * np.sqrt(2 / 3), rtol=1e-12)

    # one pixel of three differs (values 1 and 3 at two checkpoints: std 1), the others are constant
    det = VOG()
    first = torch.zeros(1, 1, 3, dtype=torch.float64)
    second = first.clone()
    first[0, 0, 1], second[0, 0, 1] = 1.0, 3.0
    det.update(first)
    det.update(second)
    np.testing.assert_allclose(det.vog(), [1.0 / 3.0], rtol=1e-12)


def test_online_vog_matches_numpy_over_stored_maps_in_any_order():
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(5, 7, 6, 6)) * rng.uniform(0.1, 3.0, size=(1, 7, 1, 1))
    expected = np.sqrt(np.var(maps, axis=0)).mean(axis=(1, 2))
    for order in (range(5), [4, 2, 0, 3, 1]):
        det = VOG()
        for t in order:
            det.update(torch.from_numpy(maps[t]))
        np.testing.assert_allclose(det.vog(), expected, rtol=1e-10)


def test_default_checkpoints_spread_up_to_the_detection_epoch():
    def planned(epochs: int, **params) -> list[int]:
        detect = bench.methods.get("vog-refurb").detect_epoch(epochs)  # what `fit` puts in trial.detect_epoch
        trial = SimpleNamespace(protocol=dataclasses.replace(TINY, epochs=epochs), detect_epoch=detect)
        return VOG(**params).planned(trial)

    assert planned(8) == [2, 3, 4]  # detection after epoch 4 of 8
    assert planned(12) == [2, 4, 6]
    assert planned(12, checkpoints=2) == [3, 6]
    assert planned(2) == [1]  # one epoch before detection: one checkpoint only (VOG is then 0 everywhere)
    assert planned(12, checkpoints=[5, 1, 5]) == [1, 5]
    assert VOG_MODULE.checkpoint_epochs(3, 9) == [3, 6, 9]
    with pytest.raises(ValueError):
        VOG(checkpoints=1)
    with pytest.raises(ValueError):
        VOG(normalise="rank")


def test_group_normalisation_gives_mean_zero_std_one_per_group():
    rng = np.random.default_rng(0)
    groups = np.array(["2CH/ED"] * 7 + ["2CH/ES"] * 5 + ["4CH/ED"] * 9 + ["4CH/ES"] * 3)
    scale = {"2CH/ED": 1.0, "2CH/ES": 10.0, "4CH/ED": 0.01, "4CH/ES": 100.0}
    scores = np.array([rng.normal(scale[g], scale[g]) for g in groups])
    z = VOG_MODULE.group_normalise(scores, groups, "group")
    for g in scale:
        assert z[groups == g].mean() == pytest.approx(0.0, abs=1e-12)
        assert z[groups == g].std() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(VOG_MODULE.group_normalise(scores, groups, "abs"), np.abs(z))
    np.testing.assert_array_equal(VOG_MODULE.group_normalise(scores, groups, "none"), scores)
    # within a group the order is kept; a group of one (or of equal values) carries no evidence: 0
    for g in scale:
        assert (np.argsort(z[groups == g]) == np.argsort(scores[groups == g])).all()
    np.testing.assert_array_equal(VOG_MODULE.group_normalise(np.array([5.0, 1.0, 1.0]), np.array(["a", "b", "b"])), [0.0, 0.0, 0.0])


def test_score_groups_by_view_and_phase_from_the_info():
    info = pd.DataFrame({"view": ["2CH", "2CH", "4CH", "4CH"] * 2, "phase": ["ED"] * 4 + ["ES"] * 4})
    det = VOG()
    base = torch.zeros(8, 2, 2, dtype=torch.float64)
    spread = torch.arange(1.0, 9.0, dtype=torch.float64).view(-1, 1, 1).expand(8, 2, 2)
    det.update(base)
    det.update(spread)
    det.seen = [4]  # as if epoch 4 had been a checkpoint
    trial = SimpleNamespace(epoch=4, info=info)
    scores = det.score(trial).values
    raw = np.arange(1.0, 9.0) / 2  # population std of {0, v} is v / 2
    np.testing.assert_allclose(det.raw, raw)
    keys = (info["view"] + "/" + info["phase"]).to_numpy()
    for g in np.unique(keys):  # two samples per group: z = -1, +1
        np.testing.assert_allclose(np.sort(scores[keys == g]), [-1.0, 1.0])
    assert det.flag(scores, trial).dtype == bool


# Detection quality: measured, reported, not asserted. On this protocol (80 training images at 64 px, 8 epochs,
# systematic:0.5 = LV dilated 3 mm, ~1-2 px, into the myocardium), group-normalised VOG AUROC at the recipes'
# default checkpoints (epochs 2, 3, 4; detection after epoch 4) was 0.43 (seed 0) and 0.51 (seed 1); with mm=5,
# 0.47 and 0.60. Over the whole training (checkpoints 4, 6, 8, scored after the last epoch): 0.62 and 0.49; with
# mm=5, 0.62 and 0.63. Mean training loss over epochs 2-4 gave 0.62 / 0.54 (0.65 / 0.62 with mm=5). At this size
# VOG is not reliably above chance, so asserting > 0.5 would only pin one lucky seed and break whenever the
# phantom or the noise moves; the tests check that the runs are well formed and print the AUROC.
SMALL = bench.protocols.get("small")  # 80 training images at 64 px, 8 epochs
NOISE = "systematic:0.5"


def test_vog_refurb_on_the_small_protocol_reports_its_auroc(capsys):
    record = bench.run_trial(SMALL, "vog-refurb", NOISE, seed=0)
    det = record.metrics["detection"]
    with capsys.disabled():
        print(f"\nvog-refurb, small protocol, {NOISE}, seed 0, checkpoints 2/3/4: AUROC {det['auroc']:.3f}, {det['n_flagged']} flagged")
    assert det["n_corrupted"] == 40
    assert 0.0 <= det["auroc"] <= 1.0
    assert record.metrics["refurbishment"]["n_refurbished"] == det["n_flagged"]


def test_vog_over_the_whole_training_reports_its_auroc(capsys):
    from bench.noise import apply_noise
    from bench.training import fit
    from bench.trial import initial_trial, protocol_data, seed_everything

    seed = 0
    seed_everything(seed)
    train = protocol_data(SMALL)["train"]
    noisy = apply_noise(NOISE, train.labels, train.spacing, train.ids, seed, info=train.info)
    recipe = bench.Recipe(
        name="vog-late", description="test only", detector="vog", detect_at=1.0, detector_params={"checkpoints": [4, 6, 8]}
    )
    result = fit(initial_trial(SMALL, seed, train, noisy, recipe), recipe)
    assert result.detector.seen == [4, 6, 8]
    scores = result.scores.values
    auroc = bench.detection_summary(scores, result.flags, noisy.corrupted)["auroc"]
    with capsys.disabled():
        print(f"\nVOG over checkpoints 4/6/8 (scored after training), small protocol, {NOISE}, seed 0: AUROC {auroc:.3f}")
    assert 0.0 <= auroc <= 1.0
    # the documented flag rule on the documented score: mixture flags on per-(view, phase) z-scores
    np.testing.assert_array_equal(result.flags, bench.mixture_flags(scores))
    for _, rows in train.info.groupby(["view", "phase"]).indices.items():
        assert scores[rows].mean() == pytest.approx(0.0, abs=1e-9)
        assert scores[rows].std() == pytest.approx(1.0, rel=1e-9)


# ---------------------------------------------------------------- training-stage windows and the boundary band


def test_windows_take_the_epochs_they_promise():
    epochs = VOG_MODULE.window_epochs
    assert epochs("early", 3, 8) == [1, 2, 3]
    assert epochs("middle", 3, 8) == [3, 4, 5]  # centred on 8 / 2
    assert epochs("late", 3, 8) == [6, 7, 8]
    assert epochs("late", 3, 12) == [10, 11, 12] and epochs("middle", 3, 12) == [5, 6, 7]
    assert epochs("late", 5, 2) == [1, 2]  # never more epochs than have been trained
    assert epochs("spread", 3, 12) == VOG_MODULE.checkpoint_epochs(3, 12) == [4, 8, 12]
    with pytest.raises(ValueError):
        VOG(window="final")
    with pytest.raises(ValueError):
        VOG(checkpoints=[2, 4], window="late")


def test_each_window_checkpoints_exactly_its_epochs_in_a_trial_and_signs_its_score():
    """Through the loop: no detection epoch sneaks into a window; early negates the score (Agarwal et al. 2022, 3.5)."""
    from bench.noise import apply_noise
    from bench.training import fit
    from bench.trial import initial_trial, protocol_data

    protocol = dataclasses.replace(TINY, name="tiny-6", epochs=6)
    train = protocol_data(protocol)["train"]
    noisy = apply_noise("systematic:0.5", train.labels, train.spacing, train.ids, 0, info=train.info)
    raw = {}
    for window in ("early", "middle", "late"):
        recipe = bench.Recipe(name=f"vog-{window}", description="test only", detector="vog", detect_at=1.0,
                              detector_params={"window": window, "normalise": "none"})  # fmt: skip
        torch.manual_seed(0)
        result = fit(initial_trial(protocol, 0, train, noisy, recipe), recipe)
        assert result.detector.seen == VOG_MODULE.window_epochs(window, 3, 6)
        raw[window] = result.detector.raw
        np.testing.assert_allclose(result.scores.values, VOG_MODULE.WINDOW_SIGN[window] * result.detector.raw)
    assert VOG_MODULE.WINDOW_SIGN == {"spread": 1.0, "early": -1.0, "middle": 1.0, "late": 1.0}


def test_the_band_is_every_pixel_within_its_distance_of_a_label_change():
    labels = np.zeros((2, 9, 9), np.uint8)
    labels[0, 3:6, 3:6] = 1  # a 3 x 3 square
    spacing = np.array([[1.0, 1.0], [1.0, 1.0]])
    band = VOG_MODULE.boundary_band(labels, spacing, 1.0)
    # brute force: a pixel is in the band when some pixel with a differently labelled 4-neighbour is within 1 mm
    edge = np.zeros((9, 9), bool)
    for r in range(9):
        for c in range(9):
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= r + dr < 9 and 0 <= c + dc < 9 and labels[0, r + dr, c + dc] != labels[0, r, c]:
                    edge[r, c] = True
    want = np.array([[any(edge[a, b] and math.hypot(a - r, b - c) <= 1.0 for a in range(9) for b in range(9)) for c in range(9)]
                     for r in range(9)])  # fmt: skip
    np.testing.assert_array_equal(band[0], want)
    assert not band[1].any()  # no label change, no band
    wide = VOG_MODULE.boundary_band(labels, np.array([[0.5, 0.5]] * 2), 1.0)  # finer pixels: the same mm covers more of them
    assert wide[0].sum() > band[0].sum()


def test_band_region_gradients_ignore_pixels_outside_the_band(double_model):
    images = torch.rand(2, 1, SIZE, SIZE, dtype=torch.float64)
    labels = torch.zeros(2, SIZE, SIZE, dtype=torch.int64)
    nothing = torch.zeros(2, SIZE, SIZE, dtype=torch.bool)
    assert VOG(region="band").input_gradients(double_model, images, labels, nothing).abs().max() == 0
    assert VOG(region="band").input_gradients(double_model, images, labels, ~nothing).abs().max() > 0
