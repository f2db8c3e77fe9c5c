"""The label-map toolkit against independent truth: explicit loops, breadth-first searches and hand-made cases."""

import numpy as np
import pytest
from brute_force import brute_boundary, flood_components, heart, hole_pixels, masks

from bench.labelmaps import (
    boundary,
    bounding_box,
    clean_label_map,
    confusion,
    dice_from_counts,
    dice_per_structure,
    holes,
    label_dice,
    largest_component,
    make_valid,
    n_components,
    region_counts,
    region_mask,
    topology,
    touching,
)
from bench.labelset import CAMUS_LABELS, LabelSet, Structure

TWO = LabelSet("two", (Structure(1, "a", "A"), Structure(2, "b", "B")))


def blobs(rng: np.random.Generator, shape: tuple[int, ...], k: int = 4) -> np.ndarray:
    """Random label maps with values 0..k-1, 40% of pixels forced to background."""
    lab = rng.integers(0, k, shape).astype(np.uint8)
    lab[rng.random(shape) < 0.4] = 0
    return lab


# --------------------------------------------------------------------------- overlap and Dice


@pytest.mark.parametrize("k", [2, 4, 5])
def test_confusion_counts_every_pixel_pair(k):
    rng = np.random.default_rng(k)
    pred, truth = rng.integers(0, k, (70, 5, 6)).astype(np.uint8), rng.integers(0, k, (70, 5, 6)).astype(np.uint8)  # > one chunk
    want = np.zeros((70, k, k), np.int64)
    for i, r, c in np.ndindex(pred.shape):
        want[i, pred[i, r, c], truth[i, r, c]] += 1
    np.testing.assert_array_equal(confusion(pred, truth, k), want)
    with pytest.raises(ValueError, match=f"0..{k - 2}"):
        confusion(pred, truth, k - 1)
    with pytest.raises(ValueError, match="must be equal"):
        confusion(pred[:, :4], truth, k)


def test_dice_from_counts_by_hand_with_empty_masks():
    inter, pred, truth = np.array([2, 0, 0, 3]), np.array([4, 0, 5, 3]), np.array([2, 0, 0, 3])
    assert list(dice_from_counts(inter, pred, truth)) == [2 * 2 / 6, 1.0, 0.0, 1.0]  # both empty: 1; one empty: 0


def test_region_counts_of_a_merged_region():
    pred = np.array([[[1, 2, 0, 3]]], np.uint8)
    truth = np.array([[[2, 2, 1, 0]]], np.uint8)
    inter, p, t = region_counts(confusion(pred, truth, 4), (1, 2))
    assert (inter[0], p[0], t[0]) == (2, 2, 3)


def test_dice_per_structure_hand_computed_and_empty_cases():
    truth = np.zeros((3, 4, 4), np.uint8)
    pred = np.zeros((3, 4, 4), np.uint8)
    truth[0, :2, :2] = 1  # 4 px
    pred[0, :2, :1] = 1  # 2 px, all inside: Dice = 2*2/(4+2)
    truth[1, 0, 0] = 2  # myo only in truth: Dice 0
    # image 2: everything empty: Dice 1 for every structure
    d = dice_per_structure(pred, truth)
    assert list(d) == ["lv", "myo", "la"]
    assert d["lv"] == pytest.approx([4 / 6, 1.0, 1.0])
    assert d["myo"] == pytest.approx([1.0, 0.0, 1.0])
    assert d["la"] == pytest.approx([1.0, 1.0, 1.0])
    assert list(dice_per_structure(pred.clip(0, 2), truth.clip(0, 2), TWO)) == ["a", "b"]


def test_label_dice_by_hand_and_against_a_loop():
    a = np.zeros((1, 4, 4), np.uint8)
    b = np.zeros((1, 4, 4), np.uint8)
    a[0, :2, :2] = 1  # 4 px of LV
    b[0, :2, :1] = 1  # 2 px, both inside a's
    a[0, 3, 3] = 3  # LA in a only
    # LV 2*2/(4+2) = 2/3, MYO absent from both = 1, LA 0
    assert label_dice(a, b)[0] == pytest.approx((2 / 3 + 1 + 0) / 3)
    rng = np.random.default_rng(0)
    x, y = blobs(rng, (6, 7, 9)), blobs(rng, (6, 7, 9))
    for i in range(6):
        scores = []
        for v in (1, 2, 3):
            both = sum(1 for p, q in zip(x[i].ravel(), y[i].ravel(), strict=True) if p == v and q == v)
            total = int((x[i] == v).sum() + (y[i] == v).sum())
            scores.append(2 * both / total if total else 1.0)
        assert label_dice(x, y)[i] == pytest.approx(sum(scores) / 3, rel=1e-12)


def test_label_dice_averages_the_label_sets_mean_structures():
    only_a = LabelSet("a-only", TWO.structures, mean_over=("a",))
    x, y = np.array([[[1, 2]]], np.uint8), np.array([[[1, 0]]], np.uint8)  # a: Dice 1, b: Dice 0
    assert label_dice(x, y, TWO)[0] == 0.5 and label_dice(x, y, only_a)[0] == 1.0


# --------------------------------------------------------------------------- masks, boxes, boundaries


def test_region_mask_and_bounding_box_by_hand():
    lab = heart()
    np.testing.assert_array_equal(region_mask(lab, (1, 2)), (lab == 1) | (lab == 2))
    assert bounding_box(lab == 3) == (slice(30, 42), slice(12, 28))
    assert bounding_box(lab == 3, 7) == (slice(23, 48), slice(5, 35))  # grown, clipped at the bottom edge (48 rows)
    assert bounding_box(np.zeros((3, 3), bool)) is None


@pytest.mark.parametrize("image_edge", [True, False])
def test_boundary_equals_the_loop_on_stacks(image_edge):
    rng = np.random.default_rng(1)
    lab = blobs(rng, (5, 9, 11))
    lab[0] = 1  # a mask filling the image: boundary is the frame, or nothing
    for v in (1, 2, 3):
        got = boundary(lab == v, image_edge=image_edge)
        for i in range(len(lab)):
            np.testing.assert_array_equal(got[i], brute_boundary(lab[i] == v, image_edge))
    assert boundary(lab[:1] == 1, image_edge=False).sum() == 0 and boundary(lab[:1] == 1).sum() == 2 * 9 + 2 * 11 - 4


def test_touching_equals_the_loop():
    rng = np.random.default_rng(2)
    mask = rng.random((8, 10)) < 0.2
    want = np.zeros_like(mask)
    for r, c in np.ndindex(mask.shape):
        want[r, c] = any(0 <= r + dr < 8 and 0 <= c + dc < 10 and mask[r + dr, c + dc] for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)))
    np.testing.assert_array_equal(touching(mask), want)


# --------------------------------------------------------------------------- components and holes


def test_components_and_holes_equal_breadth_first_search():
    rng = np.random.default_rng(3)
    for _ in range(30):
        mask = blobs(rng, (12, 15), 2) > 0
        eight, four = flood_components(mask), flood_components(mask, eight=False)
        assert n_components(mask) == len(eight)
        for comps, is_eight in ((eight, True), (four, False)):
            largest = max(comps, key=lambda m: m.sum(), default=mask)  # max() keeps the first of equal sizes
            np.testing.assert_array_equal(largest_component(mask, eight=is_eight), largest)
        np.testing.assert_array_equal(holes(mask), hole_pixels(mask))


def test_a_diagonal_touch_joins_8_connected_components_only():
    mask = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], bool)
    assert n_components(mask) == 1 and len(flood_components(mask, eight=False)) == 2
    np.testing.assert_array_equal(largest_component(mask, eight=False), np.array([[0, 0, 0], [0, 1, 1], [0, 0, 0]], bool))


@pytest.mark.parametrize(("label_set", "k"), [(CAMUS_LABELS, 4), (TWO, 3)])
def test_topology_counts_match_breadth_first_search_on_random_blobs(label_set, k):
    rng = np.random.default_rng(0)
    for _ in range(40):
        lab = blobs(rng, (14, 17), k)
        comps, hole_count = topology(lab, label_set)
        structure_masks = [lab == v for v in label_set.values] + [lab > 0]
        for i, m in enumerate(structure_masks):
            assert comps[i] == len(flood_components(m))
            assert hole_count[i] == len(flood_components(hole_pixels(m), eight=False))  # holes as 4-connected background
    which = np.array([False, True, False, False])
    comps, hole_count = topology(heart(), CAMUS_LABELS, which)
    assert list(comps) == [0, 1, 0, 0] and list(hole_count) == [0, 0, 0, 0]


# --------------------------------------------------------------------------- repair


def test_make_valid_repairs_what_the_clean_label_did_not_have():
    clean = heart()
    broken = clean.copy()
    broken[1:3, 1:3] = 1  # a stray cavity island
    broken[7, 10] = 0  # a hole in the wall (and so in the heart)
    broken[20, 20] = 3  # an atrium island inside the cavity
    broken[12:14, 15:17] = 0  # a hole in the cavity
    fixed = make_valid(clean, broken)
    np.testing.assert_array_equal(fixed, clean)
    # a wall closed across the mitral plane encloses the cavity: wrong, but a valid label map, left alone
    closed = clean.copy()
    closed[29, 13:27] = 2
    np.testing.assert_array_equal(make_valid(clean, closed), closed)
    # a defect the clean label has too is left alone
    two = clean.copy()
    two[1:3, 1:3] = 1
    assert make_valid(two, two)[1, 1] == 1
    # values outside the label set become background
    assert make_valid(clean, np.where(clean == 3, 7, clean).astype(np.uint8)).max() == 2


def test_make_valid_keeps_every_clean_property_on_random_damage():
    rng = np.random.default_rng(4)
    clean = heart()
    for _ in range(20):
        noisy = np.where(rng.random(clean.shape) < 0.05, rng.integers(0, 4, clean.shape), clean).astype(np.uint8)
        fixed = make_valid(clean, noisy)
        assert not hole_pixels(fixed > 0).any()
        for key, m in masks(fixed).items():
            if key != "heart":
                assert len(flood_components(m)) == 1, key


def test_clean_label_map_by_hand():
    pred = np.zeros((12, 12), np.uint8)
    pred[1:6, 1:6] = 2  # a myocardium ring around a background hole ...
    pred[3, 3] = 0
    pred[2:5, 8:11] = 1  # the larger LV blob (9 px) ...
    pred[7, 10] = 1  # ... and a smaller one, dropped
    pred[8:11, 1:3] = 3  # an atrium (6 px) ...
    pred[11, 3] = 3  # ... and a pixel touching it only diagonally: another 4-connected component, dropped
    want = pred.copy()
    want[3, 3] = 2  # the hole takes the ring's value
    want[7, 10] = 0
    want[11, 3] = 0
    np.testing.assert_array_equal(clean_label_map(pred), want)
    np.testing.assert_array_equal(clean_label_map(np.zeros((4, 4), np.uint8)), np.zeros((4, 4), np.uint8))
