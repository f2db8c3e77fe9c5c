"""Noise generators: spec parsing, which samples, what is done to them, and the kept truth."""

import numpy as np
import pytest

from bench import apply_noise, parse_noise
from bench.noise import select_corrupted


def heart(h: int = 48, w: int = 40) -> np.ndarray:
    """A hand-made label map: LV rectangle, myocardium band open at the base, atrium below."""
    lab = np.zeros((h, w), np.uint8)
    lab[5:30, 8:32] = 2
    lab[10:30, 13:27] = 1
    lab[30:42, 12:28] = 3
    return lab


def brute_force_grow(lab: np.ndarray, value: int, into: int, mm: float, spacing) -> np.ndarray:
    """Pixels of label `into` within `mm` (Euclidean, in mm) of some pixel of `value` become `value`."""
    src = np.argwhere(lab == value) * np.asarray(spacing)
    out = lab.copy()
    for r, c in np.argwhere(lab == into):
        d = np.sqrt((((src - np.array([r, c]) * np.asarray(spacing)) ** 2).sum(1))).min()
        if d <= mm:
            out[r, c] = value
    return out


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (2.0, 0.5), (0.7, 1.3)])
def test_systematic_grows_the_cavity_into_the_wall_by_mm(spacing):
    lab = heart()[None]
    sp = np.array([spacing])
    res = apply_noise("systematic:1.0,mm=3", lab, sp, ["a"], seed=0)
    np.testing.assert_array_equal(res.labels[0], brute_force_grow(lab[0], 1, 2, 3.0, spacing))
    assert (res.labels[0] == 3).sum() == (lab[0] == 3).sum()  # the atrium is untouched
    assert res.changed[0].sum() == (res.labels[0] != lab[0]).sum() > 0


def test_systematic_erode_gives_cavity_pixels_to_the_wall_only_from_the_wall_side():
    lab = heart()[None]
    res = apply_noise("systematic:1.0,direction=erode,mm=2", lab, np.ones((1, 2)), ["a"], seed=0)
    out = res.labels[0]
    assert ((lab[0] == 1) & (out == 2)).sum() > 0
    # the cavity still touches the atrium: erosion works from the wall, not across the mitral plane
    assert (out[29, 13:27] == 1).any()
    assert set(np.unique(out)) == {0, 1, 2, 3}


def test_exact_count_nested_levels_and_id_dependence():
    ids = [f"patient{i:04d}_2CH_ED" for i in range(200)]
    sets = [select_corrupted(ids, level, seed=3) for level in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)]
    for mask, level in zip(sets, (0.0, 0.1, 0.25, 0.5, 0.75, 1.0), strict=True):
        assert mask.sum() == round(level * 200)
    for lo, hi in zip(sets, sets[1:], strict=False):
        assert not (lo & ~hi).any()
    # which samples depends on (seed, id) only, not on their order
    perm = np.random.default_rng(0).permutation(200)
    shuffled = select_corrupted([ids[i] for i in perm], 0.25, seed=3)
    np.testing.assert_array_equal(shuffled, sets[2][perm])
    assert not np.array_equal(select_corrupted(ids, 0.25, seed=4), sets[2])


def test_deterministic_and_clean_samples_untouched():
    rng = np.random.default_rng(1)
    labels = np.stack([np.roll(heart(), rng.integers(-3, 4), axis=1) for _ in range(20)])
    spacing = np.full((20, 2), 0.8)
    ids = [f"s{i}" for i in range(20)]
    a = apply_noise("random:0.5", labels, spacing, ids, seed=7)
    b = apply_noise("random:0.5", labels, spacing, ids, seed=7)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.corrupted.sum() == 10
    np.testing.assert_array_equal(a.labels[~a.corrupted], labels[~a.corrupted])
    assert (a.label_dice[~a.corrupted] == 1.0).all()
    assert (a.label_dice[a.corrupted] < 1.0).all()
    assert a.mean_label_dice == pytest.approx(a.label_dice[a.corrupted].mean())
    np.testing.assert_array_equal(a.changed, a.labels != labels)


def test_none_is_the_clean_reference():
    lab = heart()[None]
    res = apply_noise("none", lab, np.ones((1, 2)), ["a"], seed=0)
    np.testing.assert_array_equal(res.labels, lab)
    assert res.mean_label_dice == 1.0 and not res.corrupted.any()


def test_canonical_spec_text_leaves_defaults_out():
    assert parse_noise("systematic:0.50").text == "systematic:0.5"
    assert parse_noise("systematic:0.5,mm=3").text == "systematic:0.5"
    assert parse_noise("systematic:0.5,mm=4,structure=la").text == "systematic:0.5,mm=4.0,structure=la"
