"""Evaluation shared by every trial: segmentation, detection, refurbishment and clinical metrics.

No method computes its own metrics; `bench.trial` calls these on the clean test
labels. Public API:

- `evaluate_segmentation(pred, truth, spacing, info=None, label_set=CAMUS_LABELS)`: the record's
  segmentation metrics (Dice, HD95, HD, MSD per structure and averaged, missed
  counts, the epicardial region, clinical EF / area errors) in one dict.
- `surface_metrics(pred, truth, spacing, label_set=CAMUS_LABELS)`: per-image Dice / HD95 / HD / MSD /
  missed arrays for every structure (the building block of the above).
- `dice_per_structure` (from `bench.labelmaps`), `segmentation_summary`: per-image and mean Dice only.
- `detection_summary`, `pixel_localisation`, `auroc`, `average_precision`: detection
  against the noise truth.
- `refurbishment_summary`: label Dice before / after refurbishment, split by truth.
- `lv_area`, `long_axis`, `disc_diameters`, `biplane_volume`, `clinical_summary`:
  LV cavity area and biplane ejection fraction by the method of discs.

Surface distances (HD95, HD, MSD), the suite's one definition:

- boundary of a mask = its pixels that have a 4-neighbour outside the mask (mask
  minus its erosion by the 3 x 3 cross; pixels outside the image count as outside),
  the same boundary as MONAI's default;
- directed distances A -> B = for each boundary pixel of A, the Euclidean distance
  in mm between pixel centres (spacing (row, col) of that image, on the evaluated
  grid) to the nearest boundary pixel of B;
- HD95 = max(p95(A -> B), p95(B -> A)), the larger of the two directed 95th
  percentiles (numpy's linear interpolation), as MONAI and DeepMind's
  surface-distance compute it. medpy and seg-metrics instead take the 95th
  percentile of the POOLED distances of both directions, which is usually
  smaller (much smaller when one mask has a far spurious blob); numbers from
  the two are not comparable.
- HD = max of all directed distances; MSD = mean of the pooled directed
  distances of both directions (average symmetric surface distance).
- Both masks empty: Dice 1, distances 0. Exactly one empty: Dice 0, and HD95 = HD
  = MSD = the image diagonal in mm (larger than any real distance on that image),
  counted in `missed`. Nothing is ever NaN, and no image drops out of a mean
  (MONAI returns NaN / inf here, and a NaN silently leaves its mean).

Regions come from the data's `LabelSet` (`Data.label_set`; default CAMUS's):
every structure, and the derived regions reported under their own names. For
CAMUS: `lv` (label 1), `myo` (2), `la` (3) and `epi` (the epicardial region,
labels 1 and 2 together). Means over structures (`mean`) average the label set's
averaged structures (CAMUS: lv, myo and la); `epi` is reported separately
because it overlaps lv and myo. Clinical metrics need the label set's cavity
(and use its atrium for the base); without a cavity there are none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from bench.labelmaps import (
    boundary,
    bounding_box,
    confusion,
    dice_from_counts,
    dice_per_structure,
    label_dice,
    region_counts,
    region_mask,
    touching,
)
from bench.labelset import CAMUS_LABELS, LabelSet

SURFACE_METRICS: tuple[str, ...] = ("hd95", "hd", "msd")
#: number of discs of the biplane method of discs
N_DISCS = 20


# --------------------------------------------------------------------------- Dice


def segmentation_summary(pred: np.ndarray, truth: np.ndarray, label_set: LabelSet = CAMUS_LABELS) -> dict[str, float]:
    """Mean Dice over images per structure, and the mean of the averaged ones (`mean`)."""
    per = dice_per_structure(pred, truth, label_set)
    summary = {name: float(v.mean()) for name, v in per.items()}
    summary["mean"] = float(np.mean([summary[name] for name in label_set.averaged]))
    return summary


# --------------------------------------------------------------- surface distances


def image_diagonal(shape: tuple[int, ...], spacing: np.ndarray) -> np.ndarray:
    """The image diagonal in mm (the penalty distance of a missed structure), per image for spacing (N, 2)."""
    spacing = np.asarray(spacing, dtype=np.float64)
    return np.hypot(shape[-2] * spacing[..., 0], shape[-1] * spacing[..., 1])


def _boxes(labels: np.ndarray, regions: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, int, int, int] | None]:
    """(row0, row1, col0, col1) bounding box of every region of one label map, None when empty."""
    found = ndimage.find_objects(labels, max_label=max(max(v) for v in regions.values()))
    out: dict[str, tuple[int, int, int, int] | None] = {}
    for name, values in regions.items():
        boxes = [found[v - 1] for v in values if found[v - 1] is not None]
        out[name] = _union(*[(b[0].start, b[0].stop, b[1].start, b[1].stop) for b in boxes]) if boxes else None
    return out


def _union(*boxes: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The bounding box of boxes (row0, row1, col0, col1)."""
    return min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes)


def _p95(values: np.ndarray) -> float:
    """np.percentile(values, 95) (linear interpolation) by a partial sort, for speed on many small arrays."""
    position = 0.95 * (values.size - 1)
    lo = int(position)
    if lo + 1 >= values.size:
        return float(values.max())
    part = np.partition(values, (lo, lo + 1))
    a, b, t = part[lo], part[lo + 1], position - lo
    return float(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t))  # numpy's _lerp, for identical rounding


def _pair_distances(
    pred: np.ndarray, truth: np.ndarray, values: tuple[int, ...], box: tuple[int, int, int, int], spacing: np.ndarray
) -> tuple[float, float, float]:
    """(HD95, HD, MSD) of one region of one image, both masks non-empty, from the union box of both masks.

    The crop is the box plus one background pixel where the image allows, so the
    erosion inside it equals the full-image one, and it holds every boundary pixel
    of both masks, so the exact distance transform of the crop gives the exact
    nearest-boundary distances.
    """
    h, w = pred.shape
    rows, cols = slice(max(box[0] - 1, 0), min(box[1] + 1, h)), slice(max(box[2] - 1, 0), min(box[3] + 1, w))
    edge_p = boundary(region_mask(pred[rows, cols], values))
    edge_t = boundary(region_mask(truth[rows, cols], values))
    a = ndimage.distance_transform_edt(~edge_t, sampling=spacing)[edge_p]  # pred boundary -> nearest truth boundary
    b = ndimage.distance_transform_edt(~edge_p, sampling=spacing)[edge_t]  # truth boundary -> nearest pred boundary
    return max(_p95(a), _p95(b)), float(max(a.max(), b.max())), float((a.sum() + b.sum()) / (a.size + b.size))


def surface_metrics(
    pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray, label_set: LabelSet = CAMUS_LABELS
) -> dict[str, dict[str, np.ndarray]]:
    """Per-image metrics {dice, hd95, hd, msd, missed} -> {region: (N,) array} for label maps (N, H, W), spacing (N, 2) mm.

    Regions are the label set's (`LabelSet.regions`). Distances follow the
    module's definition; a region empty in exactly one of prediction and truth
    gets Dice 0, the image diagonal as every distance, and missed = True; empty
    in both gives Dice 1 and distances 0.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    counts = confusion(pred, truth, label_set.num_classes)  # Dice and emptiness of every region from one pass
    regions = label_set.regions
    n = len(pred)
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (n, 2))
    diagonal = image_diagonal(pred.shape, spacing)
    out: dict[str, dict[str, np.ndarray]] = {m: {} for m in ("dice", "missed", *SURFACE_METRICS)}
    both = {}
    for name, values in regions.items():
        inter, p_size, t_size = region_counts(counts, values)
        out["dice"][name] = dice_from_counts(inter, p_size, t_size)
        out["missed"][name] = (p_size > 0) != (t_size > 0)
        both[name] = (p_size > 0) & (t_size > 0)
        for metric in SURFACE_METRICS:
            out[metric][name] = np.where(out["missed"][name], diagonal, 0.0)
    for i in range(n):
        todo = [name for name in regions if both[name][i]]
        if not todo:
            continue
        p_box, t_box = _boxes(pred[i], regions), _boxes(truth[i], regions)
        for name in todo:
            box = _union(p_box[name], t_box[name])
            hd95, hd, msd = _pair_distances(pred[i], truth[i], regions[name], box, spacing[i])
            out["hd95"][name][i], out["hd"][name][i], out["msd"][name][i] = hd95, hd, msd
    return out


def evaluate_segmentation(
    pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray, info: pd.DataFrame | None = None, label_set: LabelSet = CAMUS_LABELS
) -> dict[str, Any]:
    """The record's segmentation metrics: means over images of Dice / HD95 / HD / MSD (mm), missed counts, derived regions, clinical.

    Returns {"dice", "hd95", "hd", "msd"}: {structure..., mean} floats (CAMUS:
    lv, myo, la); "missed": {structure...} image counts; each derived region
    (CAMUS: "epi"): {dice, hd95, hd, msd, missed}; "clinical":
    `clinical_summary(...)` (None without a cavity in the label set, or without
    patient / view / phase info covering both views and phases).
    """
    per = surface_metrics(pred, truth, spacing, label_set)
    out: dict[str, Any] = {}
    for metric in ("dice", *SURFACE_METRICS):
        summary = {name: float(per[metric][name].mean()) for name in label_set.names}
        summary["mean"] = float(np.mean([summary[name] for name in label_set.averaged]))
        out[metric] = summary
    out["missed"] = {name: int(per["missed"][name].sum()) for name in label_set.names}
    for name, _ in label_set.derived:
        out[name] = {metric: float(per[metric][name].mean()) for metric in ("dice", *SURFACE_METRICS)}
        out[name]["missed"] = int(per["missed"][name].sum())
    out["clinical"] = clinical_summary(pred, truth, spacing, info, label_set) if info is not None else None
    return out


# ---------------------------------------------------------------------- clinical


def _cavity(label_set: LabelSet) -> int:
    """The label value of the label set's cavity (the structure EF and areas are measured on)."""
    if label_set.cavity is None:
        raise ValueError(f"label set {label_set.name!r} names no cavity: it has no clinical metrics")
    return label_set.value(label_set.cavity)


def lv_area(labels: np.ndarray, spacing: np.ndarray, label_set: LabelSet = CAMUS_LABELS) -> np.ndarray:
    """LV cavity area in mm^2 per image of label maps (N, H, W) with spacing (N, 2)."""
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (len(labels), 2))
    return (labels == _cavity(label_set)).sum((1, 2)) * spacing[:, 0] * spacing[:, 1]


def _cavity_crop(label: np.ndarray, cavity: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(the label map cropped to the cavity's bounding box plus one pixel, the crop's (row, col) origin); None when empty."""
    box = bounding_box(label == cavity, 1)
    if box is None:
        return None
    return label[box], np.array([box[0].start, box[1].start])


def _axis_in_crop(crop: np.ndarray, spacing: np.ndarray, label_set: LabelSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cavity pixel centres, base midpoint, apex) in mm relative to the crop's origin (see `long_axis`)."""
    rows, cols = np.nonzero(crop == _cavity(label_set))
    points = np.stack([rows, cols], 1) * spacing
    at_base = np.zeros(rows.size, dtype=bool)
    if label_set.atrium is not None:
        at_base = touching(crop == label_set.value(label_set.atrium))[rows, cols]
    if not at_base.any():
        at_base = rows == rows.max()
    base = points[at_base].mean(0)
    apex = points[np.argmax(np.hypot(*(points - base).T))]
    return points, base, apex


def long_axis(label: np.ndarray, spacing: np.ndarray, label_set: LabelSet = CAMUS_LABELS) -> tuple[np.ndarray, np.ndarray] | None:
    """(base midpoint, apex) of the LV cavity (CAMUS: label 1) in mm (row, col); None for an empty cavity.

    Base midpoint: the mean centre of the cavity pixels that 4-touch the atrium
    (CAMUS: label 3), i.e. the mitral plane; without such contact (a prediction
    without atrium, or a label set without one) the mean centre of the cavity's
    bottom-most row (the apex is at the top of the image). Apex: the cavity pixel
    centre farthest from the base midpoint.
    """
    found = _cavity_crop(label, _cavity(label_set))
    if found is None:
        return None
    spacing = np.asarray(spacing, dtype=np.float64)
    _, base, apex = _axis_in_crop(found[0], spacing, label_set)
    origin = found[1] * spacing
    return base + origin, apex + origin


def disc_diameters(
    label: np.ndarray, spacing: np.ndarray, n_discs: int = N_DISCS, label_set: LabelSet = CAMUS_LABELS
) -> tuple[float, np.ndarray]:
    """(long-axis length L in mm, n_discs diameters in mm) of the LV cavity; (0, zeros) when empty.

    The axis from base midpoint to apex (`long_axis`) is cut into n_discs equal
    slabs; each diameter is the length of the cavity (as the union of its pixel
    squares) along the perpendicular through the slab's centre, sampled every
    1/8 of the finer pixel spacing.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    cavity = _cavity(label_set)
    found = _cavity_crop(label, cavity)
    if found is None:
        return 0.0, np.zeros(n_discs)
    crop = found[0]
    points, base, apex = _axis_in_crop(crop, spacing, label_set)
    length = float(np.hypot(*(apex - base)))
    if length == 0.0:
        return 0.0, np.zeros(n_discs)
    along = (apex - base) / length
    across = np.array([-along[1], along[0]])
    centres = base + np.outer((np.arange(n_discs) + 0.5) / n_discs, apex - base)
    offsets = (points - base) @ across
    step = spacing.min() / 8
    s = np.arange(offsets.min() - spacing.max(), offsets.max() + spacing.max(), step)
    idx = np.rint((centres[:, None, :] + s[None, :, None] * across) / spacing).astype(np.intp)  # (n_discs, m, 2) pixels
    ok = (idx >= 0).all(2) & (idx[..., 0] < crop.shape[0]) & (idx[..., 1] < crop.shape[1])
    inside = np.zeros(ok.shape, dtype=bool)
    inside[ok] = crop[idx[..., 0][ok], idx[..., 1][ok]] == cavity
    return length, inside.sum(1) * step


def biplane_volume(
    label_2ch: np.ndarray, spacing_2ch: np.ndarray, label_4ch: np.ndarray, spacing_4ch: np.ndarray, label_set: LabelSet = CAMUS_LABELS
) -> float:
    """LV volume in ml by the biplane method of discs: pi/4 * sum(a_i * b_i) * L / 20, L the longer long axis."""
    l2, a = disc_diameters(label_2ch, spacing_2ch, label_set=label_set)
    l4, b = disc_diameters(label_4ch, spacing_4ch, label_set=label_set)
    return float(np.pi / 4 * (a * b).sum() * max(l2, l4) / len(a) / 1000.0)


def ejection_fraction(edv: float, esv: float) -> float | None:
    """(EDV - ESV) / EDV in percent; None when EDV is not positive."""
    return 100.0 * (edv - esv) / edv if edv > 0 else None


def clinical_summary(
    pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray, info: pd.DataFrame, label_set: LabelSet = CAMUS_LABELS
) -> dict[str, Any] | None:
    """Biplane EF error (percentage points) per patient and LV area error (cm^2) per image, prediction vs clean labels.

    Patients with 2CH and 4CH images at ED and ES are evaluated; None when there
    are none, `info` lacks patient / view / phase, or the label set names no
    cavity. A prediction with an empty ED cavity has no EF: it counts in
    `n_failed` and scores as EF 0 (error = the true EF), never NaN.
    """
    if label_set.cavity is None or info is None or not {"patient", "view", "phase"} <= set(info.columns):
        return None
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (len(pred), 2))
    keys = zip(info["patient"].astype(str), info["view"].astype(str).str.upper(), info["phase"].astype(str).str.upper(), strict=True)
    index: dict[tuple[str, str, str], int] = {}
    for i, key in enumerate(keys):
        index.setdefault(key, i)
    errors, signed, failed = [], [], 0
    for patient in dict.fromkeys(str(p) for p in info["patient"]):
        keys = [(patient, view, phase) for phase in ("ED", "ES") for view in ("2CH", "4CH")]
        if not all(k in index for k in keys):
            continue
        i2d, i4d, i2s, i4s = (index[k] for k in keys)
        ef = []
        for labels in (truth, pred):
            edv = biplane_volume(labels[i2d], spacing[i2d], labels[i4d], spacing[i4d], label_set)
            esv = biplane_volume(labels[i2s], spacing[i2s], labels[i4s], spacing[i4s], label_set)
            ef.append(ejection_fraction(edv, esv))
        if ef[0] is None:  # no reference EF: the clean ED cavity is empty
            continue
        if ef[1] is None:
            failed += 1
            ef[1] = 0.0
        signed.append(ef[1] - ef[0])
        errors.append(abs(ef[1] - ef[0]))
    if not errors:
        return None
    area_error = np.abs(lv_area(pred, spacing, label_set) - lv_area(truth, spacing, label_set)) / 100.0
    return {
        "n_patients": len(errors),
        "n_failed": failed,
        "ef_abs_error_mean": float(np.mean(errors)),
        "ef_abs_error_p95": float(np.percentile(errors, 95)),
        "ef_bias": float(np.mean(signed)),
        "lv_area_abs_error_mean_cm2": float(area_error.mean()),
        "lv_area_abs_error_p95_cm2": float(np.percentile(area_error, 95)),
    }


# --------------------------------------------------------------------- detection


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count one half); None when one class is empty."""
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties (1-based)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Average precision of the ranking by descending score (ties broken pessimistically); None without positives."""
    if not positive.any():
        return None
    order = np.lexsort((positive, -scores))  # among equal scores, negatives first
    hits = positive[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def detection_summary(
    scores: np.ndarray, flags: np.ndarray, corrupted: np.ndarray, budget: int | None = None
) -> dict[str, float | int | None]:
    """Precision / recall / F1 of the flags, AUROC / AP of the scores, and precision / recall of the top-`budget` scores.

    The budget defaults to the number truly corrupted (the noise level's
    fraction), so detectors with different thresholds compare on equal terms;
    ties at the cut are broken pessimistically (clean samples first).
    """
    scores, flags, corrupted = np.asarray(scores, dtype=np.float64), np.asarray(flags, bool), np.asarray(corrupted, bool)
    tp = int((flags & corrupted).sum())
    n_flag, n_bad = int(flags.sum()), int(corrupted.sum())
    precision = tp / n_flag if n_flag else None
    recall = tp / n_bad if n_bad else None
    f1 = 2 * tp / (n_flag + n_bad) if n_flag + n_bad else None
    k = n_bad if budget is None else int(budget)
    budget_precision = budget_recall = None
    if k > 0:
        top = np.lexsort((corrupted, -scores))[:k]
        hits = int(corrupted[top].sum())
        budget_precision = hits / min(k, len(scores)) if len(scores) else None
        budget_recall = hits / n_bad if n_bad else None
    return {
        "n_flagged": n_flag,
        "n_corrupted": n_bad,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auroc": auroc(scores, corrupted),
        "ap": average_precision(scores, corrupted),
        "budget": k,
        "precision_at_budget": budget_precision,
        "recall_at_budget": budget_recall,
    }


def pixel_localisation(flag_maps: np.ndarray, changed: np.ndarray) -> dict[str, float | int | None]:
    """Pixel precision / recall of a detector's flagged pixels (N, H, W) against the pixels the noise changed, pooled over images."""
    flag_maps, changed = np.asarray(flag_maps, bool), np.asarray(changed, bool)
    if flag_maps.shape != changed.shape:
        raise ValueError(f"flag maps {flag_maps.shape} and changed pixels {changed.shape} differ in shape")
    tp = int((flag_maps & changed).sum())
    n_flag, n_changed = int(flag_maps.sum()), int(changed.sum())
    return {
        "n_flagged_px": n_flag,
        "n_changed_px": n_changed,
        "precision": tp / n_flag if n_flag else None,
        "recall": tp / n_changed if n_changed else None,
    }


# ----------------------------------------------------------------- refurbishment


def refurbishment_summary(
    refurbished: np.ndarray | None,
    corrupted: np.ndarray,
    clean_labels: np.ndarray,
    given_labels: np.ndarray,
    final_labels: np.ndarray,
    label_set: LabelSet = CAMUS_LABELS,
) -> dict[str, Any] | None:
    """Label Dice vs the clean label before (given) and after (final) over refurbished samples, split by truth.

    `corrupted` samples should rise; `clean` ones (wrongly flagged) show damage.
    None when the method refurbished nothing (`refurbished` is None).
    """
    if refurbished is None:
        return None
    refurbished, corrupted = np.asarray(refurbished, bool), np.asarray(corrupted, bool)
    out: dict[str, Any] = {"n_refurbished": int(refurbished.sum())}
    idx = np.flatnonzero(refurbished)
    before = np.ones(len(refurbished))
    after = np.ones(len(refurbished))
    if idx.size:
        before[idx] = label_dice(clean_labels[idx], given_labels[idx], label_set)
        after[idx] = label_dice(clean_labels[idx], final_labels[idx], label_set)
    for group, mask in (("corrupted", refurbished & corrupted), ("clean", refurbished & ~corrupted)):
        n = int(mask.sum())
        out[group] = {
            "n": n,
            "label_dice_before": float(before[mask].mean()) if n else None,
            "label_dice_after": float(after[mask].mean()) if n else None,
        }
    return out
