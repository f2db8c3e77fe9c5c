"""The procedural echo phantom (`datasets/echo_phantom.py`), reached through the registry."""

from __future__ import annotations

import hashlib
import math
import sys

import numpy as np
import pytest
from scipy import ndimage

import bench
from bench import BenchError

SIZE = 56
PATIENTS = 8
CROSS = ndimage.generate_binary_structure(2, 1)


@pytest.fixture(scope="module")
def data():
    return bench.load_dataset("echo-phantom", size=SIZE, patients=PATIENTS, seed=3)


def sector_mask(depth_mm: float, sector_deg: float, spacing: np.ndarray, size: int) -> np.ndarray:
    idx = np.arange(size) + 0.5
    z = (idx * spacing[0])[:, None]
    x = ((idx - size / 2) * spacing[1])[None, :]
    half = math.radians(sector_deg / 2)
    eps = 1e-6  # mm: pixels exactly on the sector edge may go either way
    return (np.sqrt(x * x + z * z) <= depth_mm + eps) & (np.abs(x) <= z * math.tan(half) + eps)


def test_shapes_dtypes_and_ids(data):
    n = PATIENTS * 4
    assert data.name == "echo-phantom"
    assert data.images.shape == data.labels.shape == (n, SIZE, SIZE)
    assert data.images.dtype == np.uint8 and data.labels.dtype == np.uint8
    assert data.spacing.shape == (n, 2) and data.spacing.dtype == np.float64
    assert data.ids[:5] == ["patient0001_2CH_ED", "patient0001_2CH_ES", "patient0001_4CH_ED", "patient0001_4CH_ES", "patient0002_2CH_ED"]
    for col in ("id", "patient", "view", "phase", "split", "quality", "ef", "age", "sex"):
        assert col in data.info.columns
    assert set(data.info["quality"]) <= {"good", "medium", "poor"}
    assert data.info["ef"].between(0.2, 0.8).all()
    # depth (rows) and lateral width (cols) differ: anisotropic, physically sized pixels
    depth = data.spacing[:, 0] * SIZE
    assert ((depth > 120) & (depth < 180)).all()
    assert (data.spacing[:, 1] > data.spacing[:, 0]).all()


def test_labels_are_camus_like(data):
    for i in range(len(data)):
        lab = data.labels[i]
        assert set(np.unique(lab)) == {0, 1, 2, 3}, data.ids[i]
        for k in (1, 2, 3):
            mask = lab == k
            _, n = ndimage.label(mask, CROSS)
            assert n == 1, (data.ids[i], k, n)
            assert np.array_equal(ndimage.binary_fill_holes(mask, CROSS), mask), (data.ids[i], k)
        lv, myo, la = lab == 1, lab == 2, lab == 3
        # the cavity touches the atrium: the myocardium does not close across the base
        assert (ndimage.binary_dilation(lv, CROSS) & la).any(), data.ids[i]
        assert not (ndimage.binary_fill_holes(myo, CROSS) & lv).any(), data.ids[i]
        # the myocardium encloses the cavity's apical half: only the base meets the atrium / background
        r = np.flatnonzero(lv.any(axis=1))
        apical = lv.copy()
        apical[r[0] + (r[-1] - r[0]) // 2 :] = False
        assert not (ndimage.binary_dilation(apical, CROSS) & (lab == 0)).any(), data.ids[i]
        # apex at the top: cavity and myocardium start above the atrium
        rows = lambda m: np.flatnonzero(m.any(axis=1))  # noqa: E731
        assert rows(lv)[0] < rows(la)[0] and rows(myo)[0] <= rows(lv)[0]
        assert rows(lv).mean() < rows(la).mean()


def test_outside_sector_is_black(data):
    for i in range(len(data)):
        row = data.info.iloc[i]
        inside = sector_mask(row["depth_mm"], row["sector_deg"], data.spacing[i], SIZE)
        assert (data.images[i][~inside] == 0).all()
        assert (data.labels[i][~inside] == 0).all()
        assert data.images[i][inside].mean() > 20  # the sector itself is not black


def test_systole_is_smaller(data):
    info = data.info
    for (patient, view), group in info.groupby(["patient", "view"]):
        ed = group.index[group["phase"] == "ED"][0]
        es = group.index[group["phase"] == "ES"][0]
        assert (data.labels[es] == 1).sum() < (data.labels[ed] == 1).sum(), (patient, view)
        assert info.loc[es, "ef"] == info.loc[ed, "ef"]
        assert info.loc[ed, "esv_ml"] / info.loc[ed, "edv_ml"] == pytest.approx(1 - info.loc[ed, "ef"])


def test_blood_is_darker_than_wall(data):
    lv = np.where(data.labels == 1, data.images, 0).sum() / (data.labels == 1).sum()
    myo = np.where(data.labels == 2, data.images, 0).sum() / (data.labels == 2).sum()
    assert lv + 20 < myo


def test_deterministic_and_per_patient(data):
    again = bench.load_dataset("echo-phantom", size=SIZE, patients=PATIENTS, seed=3)
    assert np.array_equal(again.images, data.images) and np.array_equal(again.labels, data.labels)
    assert np.array_equal(again.spacing, data.spacing) and again.fingerprint == data.fingerprint
    small = bench.load_dataset("echo-phantom", size=SIZE, patients=3, seed=3)
    n = len(small)
    assert np.array_equal(small.images, data.images[:n])
    assert np.array_equal(small.labels, data.labels[:n])
    assert np.array_equal(small.spacing, data.spacing[:n])
    cols = [c for c in small.info.columns if c != "split"]
    assert small.info[cols].equals(data.info[cols].iloc[:n].reset_index(drop=True))
    other = bench.load_dataset("echo-phantom", size=SIZE, patients=PATIENTS, seed=4)
    assert other.fingerprint != data.fingerprint and not np.array_equal(other.images, data.images)


def test_splits_by_patient():
    d = bench.load_dataset("echo-phantom", size=32, patients=10, splits=(6, 2, 2))
    per_patient = d.info.groupby("patient")["split"].agg(lambda s: set(s))
    assert all(len(s) == 1 for s in per_patient)
    counts = d.info.drop_duplicates("patient")["split"].value_counts().to_dict()
    assert counts == {"train": 6, "val": 2, "test": 2}
    default = bench.load_dataset("echo-phantom", size=32, patients=10)
    assert set(default.info["split"]) == {"train", "val", "test"}


@pytest.mark.parametrize(
    "options",
    [
        dict(patients=2),
        dict(patients=10, size=24),
        dict(patients=10, splits=(5, 2, 2)),
        dict(patients=10, splits=(12, -1, -1)),
        dict(patients=10, seed=-1),
        dict(patients=10, splits=(8, 2)),
    ],
)
def test_bad_options_raise(options):
    with pytest.raises(BenchError):
        bench.load_dataset("echo-phantom", **{"size": 32, **options})


def test_generator_output_is_frozen_per_version(data):
    """Published records name the phantom by its parameters and GENERATOR_VERSION,
    not by its bytes: a change to the rendered anatomy must bump the version.
    Labels and spacing only (exact IEEE arithmetic); image bytes pass through
    exp/log10, whose last bit may differ between CPUs' SIMD paths."""
    version = sys.modules[bench.datasets.get("echo-phantom").__module__].GENERATOR_VERSION
    frozen = {"2": "7c98bcecbeef3660"}
    digest = hashlib.sha256(data.labels.tobytes() + data.spacing.tobytes()).hexdigest()[:16]
    assert version in frozen, f"pin the labels of generator version {version} here ({digest})"
    assert digest == frozen[version], "the phantom's labels changed: bump GENERATOR_VERSION (and the protocol versions)"
