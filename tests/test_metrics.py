"""Metrics against independent truth: hand-computed cases and brute-force definitions."""

import itertools

import numpy as np
import pandas as pd
import pytest
from brute_force import brute_boundary

from bench.flagging import mixture_flags
from bench.labelset import CAMUS_LABELS, LabelSet, Structure
from bench.metrics import (
    auroc,
    average_precision,
    biplane_volume,
    clinical_summary,
    detection_summary,
    disc_diameters,
    ejection_fraction,
    evaluate_segmentation,
    long_axis,
    lv_area,
    pixel_localisation,
    refurbishment_summary,
    segmentation_summary,
    surface_metrics,
)

#: a label set without derived regions or clinical roles, whose mean leaves one structure out
OTHER = LabelSet("other", (Structure(1, "a", "A"), Structure(2, "b", "B")), mean_over=("b",))


def test_segmentation_summary_hand_computed_and_empty_cases():
    truth = np.zeros((3, 4, 4), np.uint8)
    pred = np.zeros((3, 4, 4), np.uint8)
    truth[0, :2, :2] = 1  # 4 px
    pred[0, :2, :1] = 1  # 2 px, all inside: Dice = 2*2/(4+2)
    truth[1, 0, 0] = 2  # myo only in truth: Dice 0
    # image 2: everything empty: Dice 1 for every structure
    s = segmentation_summary(pred, truth)
    assert s == pytest.approx({"lv": (4 / 6 + 2) / 3, "myo": 2 / 3, "la": 1.0, "mean": ((4 / 6 + 2) / 3 + 2 / 3 + 1) / 3})
    assert segmentation_summary(pred, truth, OTHER) == pytest.approx({"a": (4 / 6 + 2) / 3, "b": 2 / 3, "mean": 2 / 3})


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


# ----------------------------------------------------------------- surface distances, against brute force


def brute_surface(a, b, spacing):
    """(HD95, HD, MSD) by all pairwise distances between boundary pixel centres (both masks non-empty)."""
    pa = np.argwhere(brute_boundary(a)) * spacing
    pb = np.argwhere(brute_boundary(b)) * spacing
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    ab, ba = d.min(1), d.min(0)
    return max(np.percentile(ab, 95), np.percentile(ba, 95)), max(ab.max(), ba.max()), (ab.sum() + ba.sum()) / (ab.size + ba.size)


@pytest.mark.parametrize("seed", range(4))
def test_surface_metrics_equal_brute_force_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    n, h, w = 12, 11, 13
    truth = rng.integers(0, 4, (n, h, w)).astype(np.uint8)
    # blobby predictions: the truth with a fraction of pixels relabelled, plus a few fully random ones
    pred = np.where(rng.random((n, h, w)) < 0.3, rng.integers(0, 4, (n, h, w)), truth).astype(np.uint8)
    pred[:3] = rng.integers(0, 4, (3, h, w))
    spacing = rng.uniform(0.2, 1.5, (n, 2))  # anisotropic, different per image
    got = surface_metrics(pred, truth, spacing)
    for i in range(n):
        for name, values in CAMUS_LABELS.regions.items():
            a, b = np.isin(pred[i], values), np.isin(truth[i], values)
            if a.any() and b.any():
                want = brute_surface(a, b, spacing[i])
                assert (got["hd95"][name][i], got["hd"][name][i], got["msd"][name][i]) == pytest.approx(want, rel=1e-12, abs=1e-12)
                assert not got["missed"][name][i]
            total = a.sum() + b.sum()
            assert got["dice"][name][i] == pytest.approx(2 * (a & b).sum() / total if total else 1.0)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.3, 0.7), (0.8, 0.25)])
def test_square_shifted_by_k_pixels(k, spacing):
    """A 10 x 10 square shifted k rows (or k columns): every distance is at most k steps, and a whole edge (10 of 36) sits at k."""
    sr, sc = spacing
    truth = np.zeros((2, 32, 32), np.uint8)
    pred = np.zeros_like(truth)
    truth[:, 8:18, 8:18] = 1
    pred[0, 8 + k : 18 + k, 8:18] = 1  # shifted down
    pred[1, 8:18, 8 + k : 18 + k] = 1  # shifted right
    got = surface_metrics(pred, truth, np.array([spacing, spacing]))
    # HD: the far edge's pixels are exactly k steps from the other square's edge; 10 of 36 boundary pixels are, so p95 too
    assert got["hd"]["lv"] == pytest.approx([k * sr, k * sc])
    assert got["hd95"]["lv"] == pytest.approx([k * sr, k * sc])
    assert got["dice"]["lv"] == pytest.approx(2 * (100 - 10 * k) / 200)
    assert (got["msd"]["lv"] > 0).all() and (got["msd"]["lv"] < got["hd"]["lv"]).all()


def test_single_pixels_give_their_centre_distance_in_mm():
    truth = np.zeros((1, 20, 20), np.uint8)
    pred = np.zeros_like(truth)
    truth[0, 3, 4] = 3
    pred[0, 7, 16] = 3
    spacing = np.array([[0.5, 0.2]])
    got = surface_metrics(pred, truth, spacing)
    d = np.hypot(4 * 0.5, 12 * 0.2)
    for metric in ("hd95", "hd", "msd"):
        assert got[metric]["la"][0] == pytest.approx(d)
    assert got["dice"]["la"][0] == 0.0 and not got["missed"]["la"][0]


def test_identical_masks_touching_the_image_edge_give_zero():
    truth = np.ones((1, 9, 9), np.uint8)  # the whole image is LV: its boundary is the image border
    pred = truth.copy()
    pred[0, -1, :] = 0  # the prediction misses the last row: its boundary is one row higher there
    got = surface_metrics(truth, truth, np.array([[0.4, 0.9]]))
    assert got["hd"]["lv"][0] == 0.0 and got["dice"]["lv"][0] == 1.0
    got = surface_metrics(pred, truth, np.array([[0.4, 0.9]]))
    assert got["hd"]["lv"][0] == pytest.approx(0.4)  # truth's bottom row is one row (0.4 mm) from pred's


def test_empty_masks_give_the_documented_values_never_nan():
    truth = np.zeros((3, 10, 20), np.uint8)
    pred = np.zeros_like(truth)
    truth[0, 2:5, 2:5] = 1  # image 0: LV missed by the prediction
    pred[1, 2:5, 2:5] = 1  # image 1: spurious LV
    truth[2, 2:5, 2:5] = pred[2, 2:5, 2:5] = 1  # image 2: perfect
    spacing = np.array([[0.5, 0.3], [1.0, 1.0], [0.5, 0.5]])
    got = surface_metrics(pred, truth, spacing)
    diagonal = [np.hypot(10 * 0.5, 20 * 0.3), np.hypot(10, 20), 0.0]
    for metric in ("hd95", "hd", "msd"):
        assert got[metric]["lv"] == pytest.approx(diagonal)
        assert got[metric]["myo"] == pytest.approx([0, 0, 0])  # empty in both
    assert list(got["dice"]["lv"]) == [0.0, 0.0, 1.0] and list(got["dice"]["la"]) == [1.0, 1.0, 1.0]
    assert list(got["missed"]["lv"]) == [True, True, False] and not got["missed"]["myo"].any()
    summary = evaluate_segmentation(pred, truth, spacing)
    assert summary["missed"] == {"lv": 2, "myo": 0, "la": 0}
    assert summary["hd95"]["lv"] == pytest.approx(np.mean(diagonal))  # the misses stay in the mean, with their penalty
    assert summary["hd95"]["mean"] == pytest.approx(np.mean(diagonal) / 3)
    assert summary["epi"]["missed"] == 2 and summary["clinical"] is None
    assert all(np.isfinite(v) for metric in ("dice", "hd95", "hd", "msd") for v in summary[metric].values())


def test_hd95_is_the_larger_directed_percentile_not_the_pooled_one():
    """A prediction with a far spurious blob: the directed percentile sees it, medpy's pooled percentile dilutes it."""
    truth = np.zeros((1, 40, 40), np.uint8)
    truth[0, 5:25, 5:25] = 1
    pred = truth.copy()
    pred[0, 33:36, 33:36] = 1  # 9 px blob, 8 boundary px, far from everything
    spacing = np.array([1.0, 1.0])
    got = surface_metrics(pred, truth, spacing[None])
    a, b = pred[0] == 1, truth[0] == 1
    pa, pb = np.argwhere(brute_boundary(a)), np.argwhere(brute_boundary(b))
    d = np.sqrt(((pa[:, None] - pb[None]) ** 2).sum(-1))
    directed = max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))
    pooled = np.percentile(np.concatenate([d.min(1), d.min(0)]), 95)
    assert got["hd95"]["lv"][0] == pytest.approx(directed)
    assert directed > pooled + 1.0


def test_evaluate_segmentation_layout():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, (5, 16, 16)).astype(np.uint8)
    pred = rng.integers(0, 4, (5, 16, 16)).astype(np.uint8)
    out = evaluate_segmentation(pred, truth, np.full((5, 2), 0.5))
    for metric in ("dice", "hd95", "hd", "msd"):
        assert set(out[metric]) == {"lv", "myo", "la", "mean"}
        assert out[metric]["mean"] == pytest.approx(np.mean([out[metric][s] for s in ("lv", "myo", "la")]))
    assert out["dice"] == pytest.approx(segmentation_summary(pred, truth))
    assert set(out["epi"]) == {"dice", "hd95", "hd", "msd", "missed"}


def test_evaluate_segmentation_takes_regions_and_mean_from_the_label_set():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (4, 12, 12)).astype(np.uint8)
    pred = rng.integers(0, 3, (4, 12, 12)).astype(np.uint8)
    info = pd.DataFrame({"patient": ["p"] * 4, "view": ["2CH", "4CH", "2CH", "4CH"], "phase": ["ED", "ED", "ES", "ES"]})
    out = evaluate_segmentation(pred, truth, np.full((4, 2), 0.5), info, OTHER)
    assert set(out) == {"dice", "hd95", "hd", "msd", "missed", "clinical"}  # no derived region, no cavity: no clinical section
    assert out["clinical"] is None and set(out["missed"]) == {"a", "b"}
    per = surface_metrics(pred, truth, np.full((4, 2), 0.5), OTHER)
    for metric in ("dice", "hd95", "hd", "msd"):
        assert set(out[metric]) == {"a", "b", "mean"} and out[metric]["mean"] == out[metric]["b"]
        assert out[metric]["a"] == pytest.approx(per[metric]["a"].mean())
    with pytest.raises(ValueError, match=r"0\.\.2"):
        surface_metrics(np.full((1, 3, 3), 3, np.uint8), truth[:1, :3, :3], np.ones((1, 2)), OTHER)


# ------------------------------------------------------------------- clinical: areas, discs, EF


def ellipse_label(shape, spacing, semi_long, semi_short, angle=0.0, half=False, atrium=False):
    """LV cavity (label 1): the pixels whose centre lies in an ellipse (mm) with its long axis down the image, rotated by angle.

    half: only the upper (apical) half, cut flat through the centre; atrium: label 3 beyond the cut (or below the tip).
    """
    h, w = shape
    rows, cols = np.mgrid[:h, :w]
    y, x = rows * spacing[0] - h * spacing[0] / 2, cols * spacing[1] - w * spacing[1] / 2
    u = np.cos(angle) * y + np.sin(angle) * x  # along the long axis, towards the base
    v = -np.sin(angle) * y + np.cos(angle) * x
    inside = (u / semi_long) ** 2 + (v / semi_short) ** 2 <= 1
    if half:
        inside &= u <= 0
    label = np.zeros(shape, np.uint8)
    label[inside] = 1
    if atrium:
        la = ((u > 0) & (u < 20) & (np.abs(v) < 1.2 * semi_short)) if half else (((u - semi_long - 8) / 10) ** 2 + (v / 8) ** 2 <= 1)
        label[la & ~inside] = 3
    return label


SP2, SP4 = np.array([0.35, 0.25]), np.array([0.25, 0.3])


@pytest.mark.parametrize(
    "kind", [dict(), dict(atrium=True, angle=0.3), dict(half=True, atrium=True), dict(half=True, atrium=True, angle=-0.25)]
)
def test_biplane_volume_of_an_ellipsoid(kind):
    """Discs on two orthogonal ellipses with semi-axes (a, b) and (a, c) sum to the ellipsoid volume 4/3 pi a b c (half of it when cut)."""
    a, b, c = 45.0, 20.0, 24.0
    label_2ch = ellipse_label((400, 400), SP2, a, b, **kind)
    label_4ch = ellipse_label((400, 400), SP4, a, c, **kind)
    volume = biplane_volume(label_2ch, SP2, label_4ch, SP4)
    expected = 4 / 3 * np.pi * a * b * c / 1000 * (0.5 if kind.get("half") else 1)
    assert volume == pytest.approx(expected, rel=0.02)
    length, diameters = disc_diameters(label_2ch, SP2)
    assert length == pytest.approx(a if kind.get("half") else 2 * a, rel=0.02)
    assert diameters.max() == pytest.approx(2 * b, rel=0.02)


def test_long_axis_uses_the_atrium_contact_else_the_bottom_row():
    label = ellipse_label((200, 200), np.array([0.5, 0.5]), 40.0, 15.0, half=True, atrium=True)
    base, apex = long_axis(label, np.array([0.5, 0.5]))
    # image centre (50, 50) mm: the cut runs along the last cavity row (row 100 = 50 mm), the tip is 40 mm above it
    assert base == pytest.approx([50.0, 50.0]) and apex == pytest.approx([10.0, 50.0])
    no_atrium = np.where(label == 3, 0, label)
    base2, _ = long_axis(no_atrium, np.array([0.5, 0.5]))
    assert base2 == pytest.approx(base)  # same plane here: the bottom-most cavity row
    assert long_axis(np.zeros((5, 5), np.uint8), np.ones(2)) is None


def test_ejection_fraction_of_two_ellipsoids_in_closed_form():
    """ED (a, b, c) = (45, 20, 24) mm, ES (38, 15, 18) mm: EF = 1 - (38 * 15 * 18) / (45 * 20 * 24)."""
    ed = (45.0, 20.0, 24.0)
    es = (38.0, 15.0, 18.0)
    labels = np.stack(
        [
            ellipse_label((400, 400), SP2, ed[0], ed[1], half=True, atrium=True),
            ellipse_label((400, 400), SP4, ed[0], ed[2], half=True, atrium=True),
            ellipse_label((400, 400), SP2, es[0], es[1], half=True, atrium=True),
            ellipse_label((400, 400), SP4, es[0], es[2], half=True, atrium=True),
        ]
    )
    spacing = np.stack([SP2, SP4, SP2, SP4])
    edv = biplane_volume(labels[0], SP2, labels[1], SP4)
    esv = biplane_volume(labels[2], SP2, labels[3], SP4)
    expected = 100 * (1 - (es[0] * es[1] * es[2]) / (ed[0] * ed[1] * ed[2]))
    assert ejection_fraction(edv, esv) == pytest.approx(expected, abs=1.0)
    assert ejection_fraction(0.0, 10.0) is None
    info = pd.DataFrame({"patient": ["p1"] * 4, "view": ["2CH", "4CH", "2CH", "4CH"], "phase": ["ED", "ED", "ES", "ES"]})
    perfect = clinical_summary(labels, labels, spacing, info)
    assert perfect["n_patients"] == 1 and perfect["ef_abs_error_mean"] == 0.0 and perfect["lv_area_abs_error_mean_cm2"] == 0.0
    # the prediction swaps ED and ES: EF = 1 - EDV / ESV, in closed form too
    swapped = clinical_summary(labels[[2, 3, 0, 1]], labels, spacing, info)
    true_ef = 100 * (1 - esv / edv)
    assert swapped["ef_abs_error_mean"] == pytest.approx(abs(100 * (1 - edv / esv) - true_ef))
    assert swapped["ef_bias"] == pytest.approx(100 * (1 - edv / esv) - true_ef)
    # a prediction with no ED cavity: no EF, counted as failed and scored as EF 0
    empty = labels.copy()
    empty[0][empty[0] == 1] = 0
    failed = clinical_summary(empty, labels, spacing, info)
    assert failed["n_failed"] == 1 and failed["ef_abs_error_mean"] == pytest.approx(true_ef)
    # incomplete patients (one view missing) give no clinical summary
    assert clinical_summary(labels[:3], labels[:3], spacing[:3], info.iloc[:3]) is None


def test_lv_area_in_mm2():
    labels = np.zeros((2, 10, 10), np.uint8)
    labels[0, :3, :4] = 1
    labels[1, 0, 0] = 2
    assert lv_area(labels, np.array([[0.5, 0.2], [1.0, 1.0]])) == pytest.approx([12 * 0.1, 0.0])


def test_clinical_metrics_follow_the_label_sets_cavity_and_atrium():
    """The same anatomy under other label values (atrium 1, cavity 2) measures the same; without an atrium the base is the bottom row."""
    swapped = LabelSet("swapped", (Structure(1, "atrium", "A"), Structure(2, "cavity", "C")), cavity="cavity", atrium="atrium")
    no_atrium = LabelSet("no-atrium", (Structure(1, "cavity", "C"),), cavity="cavity")
    sp = np.array([0.5, 0.4])
    label = ellipse_label((200, 200), sp, 40.0, 15.0, half=True, atrium=True, angle=0.2)
    relabelled = np.array([0, 2, 0, 1], np.uint8)[label]
    np.testing.assert_array_equal(np.stack(long_axis(relabelled, sp, swapped)), np.stack(long_axis(label, sp)))
    assert disc_diameters(relabelled, sp, label_set=swapped)[1] == pytest.approx(disc_diameters(label, sp)[1])
    assert lv_area(relabelled[None], sp, swapped) == pytest.approx(lv_area(label[None], sp))
    cavity_only = np.where(label == 1, 1, 0).astype(np.uint8)
    np.testing.assert_array_equal(np.stack(long_axis(cavity_only, sp, no_atrium)), np.stack(long_axis(cavity_only, sp)))
    info = pd.DataFrame({"patient": ["p"], "view": ["2CH"], "phase": ["ED"]})
    assert clinical_summary(label[None], label[None], sp[None], info, OTHER) is None  # no cavity: no clinical section


# ------------------------------------------------------------------- detection extras and refurbishment


def test_budget_precision_recall_and_pixel_localisation():
    corrupted = np.array([True, True, True, False, False, False])
    scores = np.array([0.9, 0.2, 0.7, 0.8, 0.1, 0.3])
    flags = scores > 0.5
    d = detection_summary(scores, flags, corrupted)
    # the true budget is 3: top-3 are samples 0, 3, 2 -> 2 hits
    assert d["budget"] == 3 and d["precision_at_budget"] == pytest.approx(2 / 3) and d["recall_at_budget"] == pytest.approx(2 / 3)
    d2 = detection_summary(scores, flags, corrupted, budget=4)  # + sample 5 (clean)
    assert d2["precision_at_budget"] == pytest.approx(2 / 4) and d2["recall_at_budget"] == pytest.approx(2 / 3)
    none = detection_summary(scores, flags, np.zeros(6, bool))
    assert none["precision_at_budget"] is None and none["recall_at_budget"] is None
    changed = np.zeros((2, 4, 4), bool)
    changed[0, 0, :] = True  # 4 changed px
    maps = np.zeros_like(changed)
    maps[0, 0, :2] = maps[1, 3, 3] = True  # 3 flagged px, 2 of them changed
    loc = pixel_localisation(maps, changed)
    assert (loc["precision"], loc["recall"]) == pytest.approx((2 / 3, 2 / 4))
    assert pixel_localisation(np.zeros_like(changed), changed)["precision"] is None


def test_refurbishment_summary_hand_computed():
    clean = np.zeros((3, 4, 4), np.uint8)
    clean[:, :2, :2] = 1  # LV 4 px in every sample; myo and la empty (count 1 in label Dice)
    given = clean.copy()
    given[0, :2, :4] = 1  # sample 0 corrupted: LV 8 px, Dice 8/12 -> label Dice (2/3 + 1 + 1) / 3
    final = given.copy()
    final[0] = clean[0]  # ... and repaired
    final[1, :2, :2] = 0  # sample 1 clean but flagged: LV erased -> Dice 0 -> label Dice 2/3
    refurbished = np.array([True, True, False])
    corrupted = np.array([True, False, False])
    r = refurbishment_summary(refurbished, corrupted, clean, given, final)
    assert r["n_refurbished"] == 2
    assert r["corrupted"] == {"n": 1, "label_dice_before": pytest.approx((2 / 3 + 2) / 3), "label_dice_after": 1.0}
    assert r["clean"] == {"n": 1, "label_dice_before": 1.0, "label_dice_after": pytest.approx(2 / 3)}
    assert refurbishment_summary(None, corrupted, clean, given, final) is None
