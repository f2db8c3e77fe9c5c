"""Evaluation shared by every trial: segmentation Dice and detection scores.

No method computes its own metrics. Dice is per structure (LV cavity,
myocardium, atrium) on the clean test labels; a structure empty in both the
prediction and the truth scores 1, empty in one only scores 0, never NaN.
"""

from __future__ import annotations

import numpy as np

from bench.data import STRUCTURES


def dice_per_structure(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image Dice (N,) for each structure name, from label maps (N, H, W)."""
    out = {}
    for value, name in STRUCTURES.items():
        p, t = pred == value, truth == value
        inter = (p & t).sum(axis=(1, 2))
        total = p.sum(axis=(1, 2)) + t.sum(axis=(1, 2))
        out[name] = np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)
    return out


def segmentation_summary(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean Dice over images per structure, and their mean (`mean`)."""
    per = dice_per_structure(pred, truth)
    summary = {name: float(v.mean()) for name, v in per.items()}
    summary["mean"] = float(np.mean(list(summary.values())))
    return summary


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


def detection_summary(scores: np.ndarray, flags: np.ndarray, corrupted: np.ndarray) -> dict[str, float | int | None]:
    """Precision / recall / F1 of the flags, AUROC / AP of the scores, and precision at the true budget."""
    tp = int((flags & corrupted).sum())
    n_flag, n_bad = int(flags.sum()), int(corrupted.sum())
    precision = tp / n_flag if n_flag else None
    recall = tp / n_bad if n_bad else None
    f1 = 2 * tp / (n_flag + n_bad) if n_flag + n_bad else None
    budget_precision = None
    if n_bad:
        top = np.lexsort((corrupted, -scores))[:n_bad]
        budget_precision = float(corrupted[top].mean())
    return {
        "n_flagged": n_flag,
        "n_corrupted": n_bad,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auroc": auroc(scores, corrupted),
        "ap": average_precision(scores, corrupted),
        "precision_at_budget": budget_precision,
    }
