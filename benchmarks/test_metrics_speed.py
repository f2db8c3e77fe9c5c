"""Speed of the segmentation evaluation: 200 images of 256 x 256, 4 regions, against a straightforward scipy version.

Run with `.venv/bin/python -m pytest benchmarks -q` (or `make benchmark`), pinned
to one core. Times `evaluate_segmentation` (Dice, HD95, HD, MSD of lv / myo / la /
epi, missed counts, and the clinical biplane EF and LV area errors of 50
patients), and, in the same run, a straightforward implementation of the
per-image metrics alone (per image, per region, per direction, a full-image
`distance_transform_edt`); prints both times and their ratio and checks that the
per-image numbers agree. The target, under 2 s on one core for the whole
evaluation, is printed, not asserted: shared machines are noisy.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from bench.labelset import CAMUS_LABELS
from bench.metrics import SURFACE_METRICS, evaluate_segmentation, image_diagonal, surface_metrics

REGIONS = CAMUS_LABELS.regions

N_IMAGES, SIZE = 200, 256


def ellipse(shape: tuple[int, int], centre: np.ndarray, semi: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(inside mask, coordinate along the rotated long axis in units of the semi-axis) of an ellipse in pixels."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    dr, dc = rows - centre[0], cols - centre[1]
    u = (np.cos(angle) * dr + np.sin(angle) * dc) / semi[0]  # along the long axis (down the image at angle 0)
    v = (-np.sin(angle) * dr + np.cos(angle) * dc) / semi[1]
    return u**2 + v**2 <= 1.0, u


def heart(rng: np.random.Generator, size: int, jitter: float = 0.0, drop_la: bool = False) -> np.ndarray:
    """A CAMUS-like label map: truncated-ellipse LV cavity, a myocardial wall open at the base, an atrium below."""
    out = np.zeros((size, size), np.uint8)
    s = size / 256
    centre = np.array([115.0, 128.0]) * s + rng.normal(0, 2 + 3 * jitter, 2) * s
    semi = np.array([70.0, 30.0]) * s * rng.uniform(0.85, 1.15, 2)
    angle = np.deg2rad(rng.uniform(-15, 15))
    wall = rng.uniform(6, 10) * s
    cavity, u = ellipse(out.shape, centre, semi, angle)
    outer, u_out = ellipse(out.shape, centre, semi + wall, angle)
    base = 0.55  # the mitral plane cuts the ellipse at u = 0.55
    out[outer & (u_out * (semi[0] + wall) <= base * semi[0])] = 2
    out[cavity & (u <= base)] = 1
    if not drop_la:
        la_centre = centre + (base * semi[0] + 28 * s) * np.array([np.cos(angle), np.sin(angle)])
        la, _ = ellipse(out.shape, la_centre, np.array([30.0, 24.0]) * s, angle)
        out[la & (out == 0)] = 3
    if jitter and rng.random() < 0.2:  # a spurious blob, as a weak model makes
        blob, _ = ellipse(out.shape, rng.uniform(0.1, 0.9, 2) * size, np.array([4.0, 4.0]) * s, 0.0)
        out[blob & (out == 0)] = rng.integers(1, 4)
    return out


def make_pairs(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred, truth, spacing): n truth maps, predictions as perturbed copies (5% miss the atrium), spacing 0.3-0.7 mm."""
    rng = np.random.default_rng(seed)
    truth = np.empty((n, size, size), np.uint8)
    pred = np.empty_like(truth)
    for i in range(n):
        state = rng.integers(1 << 31)
        truth[i] = heart(np.random.default_rng(state), size)
        pred[i] = heart(np.random.default_rng(state + 1), size, jitter=1.0, drop_la=rng.random() < 0.05)
    spacing = np.stack([rng.uniform(0.5, 0.7, n), rng.uniform(0.3, 0.5, n)], 1)
    return pred, truth, spacing


def straightforward(pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """The same metrics the obvious way: per image, per region, per direction, a full-image distance transform."""
    out = {m: {name: np.zeros(len(pred)) for name in REGIONS} for m in ("dice", *SURFACE_METRICS)}
    for i in range(len(pred)):
        diagonal = float(image_diagonal(pred.shape, spacing[i]))
        for name, values in REGIONS.items():
            a, b = np.isin(pred[i], values), np.isin(truth[i], values)
            total = a.sum() + b.sum()
            out["dice"][name][i] = 2.0 * (a & b).sum() / total if total else 1.0
            if not a.any() and not b.any():
                continue
            if not a.any() or not b.any():
                for m in SURFACE_METRICS:
                    out[m][name][i] = diagonal
                continue
            edge_a = a & ~ndimage.binary_erosion(a)
            edge_b = b & ~ndimage.binary_erosion(b)
            ab = ndimage.distance_transform_edt(~edge_b, sampling=spacing[i])[edge_a]
            ba = ndimage.distance_transform_edt(~edge_a, sampling=spacing[i])[edge_b]
            out["hd95"][name][i] = max(np.percentile(ab, 95), np.percentile(ba, 95))
            out["hd"][name][i] = max(ab.max(), ba.max())
            out["msd"][name][i] = (ab.sum() + ba.sum()) / (ab.size + ba.size)
    return out


@pytest.fixture(scope="module")
def pairs():
    pred, truth, spacing = make_pairs(N_IMAGES, SIZE)
    # 4 images per patient: 2CH and 4CH at ED and ES, as the clinical metrics need
    views, phases = ["2CH", "4CH"] * (N_IMAGES // 2), ["ED", "ED", "ES", "ES"] * (N_IMAGES // 4)
    info = pd.DataFrame({"patient": np.arange(N_IMAGES) // 4, "view": views, "phase": phases})
    return pred, truth, spacing, info


@pytest.fixture
def one_core():
    """Pin the process to one core for the measurement (where the OS allows it)."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)


def test_segmentation_metrics_speed(benchmark, pairs, one_core, capsys):
    pred, truth, spacing, info = pairs
    summary = benchmark.pedantic(evaluate_segmentation, args=(pred, truth, spacing, info), rounds=3, iterations=1, warmup_rounds=1)
    full_s = benchmark.stats.stats.min
    t0 = time.perf_counter()
    fast = surface_metrics(pred, truth, spacing)
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = straightforward(pred, truth, spacing)
    slow_s = time.perf_counter() - t0
    with capsys.disabled():
        print(
            f"\n{N_IMAGES} images {SIZE}x{SIZE}, {len(REGIONS)} regions, one core: evaluate_segmentation (all metrics + clinical) "
            f"{full_s:.3f} s (min of 3, target < 2 s); per-image Dice/HD95/HD/MSD: fast {fast_s:.3f} s, "
            f"straightforward scipy {slow_s:.3f} s, ratio {slow_s / fast_s:.1f}x "
            f"(whole evaluation vs straightforward: {slow_s / full_s:.1f}x)"
        )
    assert summary["clinical"]["n_patients"] == N_IMAGES // 4
    for metric in ("dice", *SURFACE_METRICS):
        for name in REGIONS:
            np.testing.assert_allclose(fast[metric][name], slow[metric][name], rtol=1e-9, atol=1e-9, err_msg=f"{metric} {name}")
    assert sum(fast["missed"]["la"]) > 0  # the data exercises the penalty path
    assert slow_s > fast_s
