"""Spatial Correction (Yao et al., ICLR 2023): learn the boundary bias of the labels on trusted samples, undo it, relabel.

The reference code (michaelofsbu/SpatialCorrection, `utils/LabelClean.py` `Cleaner`, defaults in `config.ini`; read,
not copied) trains on the noisy labels and every `labelclean_every` (50 of 100) epochs: predicts a small clean set
(its validation set with true labels), estimates per class the signed distance between the predicted and the true
boundary (mean over the true mask's outer ring of the prediction's signed distance transform, times `sigma` = 1),
shifts every training prediction's logits by that bias (a Gaussian bump of the largest logit within the band,
`_expand` / `_shrink`), thresholds the sigmoid at 0.5 and makes the result every training sample's new label; a bias
below 1 pixel stops shifting (the prediction itself becomes the label); at most `max_iter` (3) cleanings; then it
restarts the model (`startover`).

Here, per trial (corrector `spatial`, after epoch e of the schedule below):

1. The current model predicts the training set (softmax, eval mode); P = its argmax, c = its largest probability.
2. Bias on the trusted samples (`TrialInputs.trusted`; their given labels are the verified clean ones): the label maps
   hold several structures, so the bias is estimated per *interface* between two classes a < b (background included:
   LV | myocardium is the endocardium, myocardium | background the epicardium, ...), which is where a systematic
   annotator moves a boundary (`bench.noise`'s `systematic` grows one structure into its neighbour by a fixed mm).
   Moving interface (a, b) by t mm (t > 0: class a grows into b; t < 0: b grows into a) relabels the pixels of b
   within t mm of a (or of a within |t| mm of b), distances between pixel centres in mm with each image's spacing.
   For each interface in turn ((0, 1), (0, 2), ..., (K-1, K)), the shift t in -`max_mm` .. `max_mm` by `step_mm`
   (6 mm, 0.25 mm) that maximises the number of trusted pixels agreeing with their clean label is chosen (ties: the
   smallest |t|, so no evidence means no shift) and applied before the next interface is estimated. This is the
   brute-force form of the reference's signed mean distance, exact on the pixel grid and the same operator as step 3;
   the bias of the model is -t (a prediction dilated by r mm gives t = -r).
3. Each untrusted sample's prediction is moved by the same shifts; a pixel takes the moved prediction where the model
   is confident (c >= `confidence`, 0.9) or where the move changed it, and keeps its current label elsewhere; the map
   is then made valid against the label it replaces (`bench.make_valid`). Trusted labels never change.
4. Schedule: after epoch round(`start` x E) (0.5: the reference's 50 of 100) and every round(`every` x E) epochs
   after (0.25), at most `times` (3) corrections, never after the last epoch (it would train nothing).

Deviations from the reference, and why: shifts per class interface, not per binary class mask (the reference's
JSRT masks overlap; ours partition the image, and a per-mask bias would move the myocardium's two contours together);
the shift is a move of the argmax map, not a Gaussian logit bump (the bump moves the boundary by about the bias, this by
exactly it on the grid); confident-or-moved gating at 0.9 instead of replacing whole labels (the suite's measurement:
whole-label replacement at the detection epoch is worse than the noise on boundary errors, and 0.9 is the gated
refurbisher's threshold, studies/refurbish_oracle.py); no model restart (a trial has the protocol's epochs, no more),
and no `sigma` scaling (its default 1 is the identity). The reference's clean set is its validation set; here it is
the trusted training patients, which are also trained on, as in an annotation project with verified cases.

Detector `spatial`: score = fraction of the sample's pixels changed by correction (`trial.history.corrected`), pixel
maps = those pixels; flags by the shared population rule (`bench.high_population_flags`). Recipe `spatial-correction`
scores after the last epoch (the corrector acts while training). It needs trusted samples (`Protocol.trusted_patients`).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import torch
from scipy import ndimage

from bench import Corrector, Detector, Recipe, Scores, Trial, correctors, detectors, make_valid, register_recipe


def distance_to(labels: np.ndarray, value: int, spacing: np.ndarray) -> np.ndarray:
    """float64 (N, H, W): mm from each pixel centre to the nearest pixel of class `value` in its image (inf: none)."""
    out = np.full(labels.shape, np.inf)
    for i in range(len(labels)):  # scipy's exact EDT works per image (each with its own spacing)
        inside = labels[i] == value
        if inside.any():
            out[i] = ndimage.distance_transform_edt(~inside, sampling=spacing[i])
    return out


def move_interface(labels: np.ndarray, a: int, b: int, t: float, spacing: np.ndarray) -> np.ndarray:
    """`labels` (N, H, W) with interface (a, b) moved by t mm: t > 0, pixels of b within t of a become a; t < 0, the reverse."""
    if t == 0:
        return labels.copy()
    grow, into = (a, b) if t > 0 else (b, a)
    return np.where((labels == into) & (distance_to(labels, grow, spacing) <= abs(t)), grow, labels).astype(labels.dtype)


def _gains(dist: np.ndarray, weight: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold t: the sum of `weight` over the pixels with `dist` <= t (a cumulative sum over sorted distances)."""
    order = np.argsort(dist, kind="stable")
    total = np.concatenate([[0], np.cumsum(weight[order])])
    return total[np.searchsorted(dist[order], thresholds, side="right")]


def estimate_shifts(
    pred: np.ndarray, clean: np.ndarray, spacing: np.ndarray, num_classes: int, max_mm: float = 6.0, step_mm: float = 0.25
) -> dict[tuple[int, int], float]:
    """Per class interface (a, b), a < b, in order: the shift in mm of `pred` (N, H, W) that best agrees with `clean`.

    Each interface's candidates -max_mm .. max_mm (step step_mm) are scored by the change in pixels agreeing with
    `clean`, counted exactly from sorted distances; the best (ties: the smallest |t|, then the negative) is applied
    before the next interface. See the module docstring, step 2.
    """
    steps = np.arange(1, round(max_mm / step_mm) + 1) * step_mm
    current = pred.copy()
    shifts: dict[tuple[int, int], float] = {}
    for a, b in combinations(range(num_classes), 2):
        candidates = [(0, 0.0)]
        for grow, into, sign in ((a, b, 1.0), (b, a, -1.0)):
            at = current == into
            dist = distance_to(current, grow, spacing)[at]
            # a pixel of `into` that becomes `grow` is right where clean is `grow`, and was right where clean is `into`
            weight = (clean[at] == grow).astype(np.int64) - (clean[at] == into).astype(np.int64)
            candidates += [(int(g), sign * float(t)) for g, t in zip(_gains(dist, weight, steps), steps, strict=True)]
        _, t = min(candidates, key=lambda c: (-c[0], abs(c[1]), c[1]))
        shifts[a, b] = t
        if t != 0:
            current = move_interface(current, a, b, t, spacing)
    return shifts


def apply_shifts(pred: np.ndarray, spacing: np.ndarray, shifts: dict[tuple[int, int], float]) -> np.ndarray:
    """`pred` (N, H, W) with every interface moved by its shift, in the order `estimate_shifts` estimated them."""
    out = pred.copy()
    for (a, b), t in shifts.items():
        if t != 0:
            out = move_interface(out, a, b, t, spacing)
    return out


def correction_epochs(epochs: int, start: float, every: float, times: int) -> list[int]:
    """The epochs after which the corrector acts: round(start x E), then every max(1, round(every x E)), before E, at most `times`."""
    first, step = max(1, round(start * epochs)), max(1, round(every * epochs))
    return list(range(first, epochs, step))[:times]


@correctors.register("spatial")
class SpatialCorrector(Corrector):
    """Spatial Correction: interface shifts estimated on the trusted samples move the untrusted samples' predictions."""

    #: reads `trial.inputs.trusted`; a recipe with it cannot run on a protocol without trusted patients
    needs_trusted = True

    def __init__(
        self,
        start: float = 0.5,
        every: float = 0.25,
        times: int = 3,
        max_mm: float = 6.0,
        step_mm: float = 0.25,
        confidence: float = 0.9,
    ) -> None:
        super().__init__(start=start, every=every, times=times, max_mm=max_mm, step_mm=step_mm, confidence=confidence)
        if not (0.0 < start < 1.0 and 0.0 < every <= 1.0 and times >= 1):
            raise ValueError("start must be in (0, 1), every in (0, 1] and times at least 1")
        if not (0.0 < step_mm <= max_mm and 0.0 <= confidence <= 1.0):
            raise ValueError("need 0 < step_mm <= max_mm and confidence in [0, 1]")
        self.start, self.every, self.times = start, every, times
        self.max_mm, self.step_mm, self.confidence = max_mm, step_mm, confidence
        #: the shifts estimated at each correction (epoch, {(a, b): mm}), for studies; the record does not hold them
        self.estimates: list[tuple[int, dict[tuple[int, int], float]]] = []

    def correct(self, trial: Trial) -> torch.Tensor | None:
        if trial.epoch not in correction_epochs(trial.protocol.epochs, self.start, self.every, self.times):
            return None
        trusted = trial.inputs.trusted
        if trusted is None or not trusted.any():
            raise RuntimeError("corrector spatial needs trusted samples: run it on a protocol with trusted_patients > 0")
        spacing = trial.inputs.spacing if trial.inputs.spacing is not None else np.ones((trial.n, 2))
        confidence, pred = trial.predict().max(1)
        pred = pred.numpy().astype(np.uint8)
        shifts = estimate_shifts(
            pred[trusted], np.asarray(trial.given)[trusted], spacing[trusted], trial.inputs.num_classes, self.max_mm, self.step_mm
        )
        self.estimates.append((trial.epoch, shifts))
        rest = np.flatnonzero(~trusted)
        moved = apply_shifts(pred[rest], spacing[rest], shifts)
        current = trial.label_tensor().numpy()
        take = (confidence.numpy()[rest] >= self.confidence) | (moved != pred[rest])
        proposed = np.where(take, moved, current[rest]).astype(np.uint8)
        old = current[rest].astype(np.uint8)
        label_set = trial.inputs.label_set
        current[rest] = np.stack([make_valid(o, p, label_set) for o, p in zip(old, proposed, strict=True)])
        return torch.from_numpy(current)


@detectors.register("spatial")
class CorrectedFraction(Detector):
    """Score: the fraction of the sample's pixels the corrector changed; pixel maps: those pixels; population flags."""

    def __init__(self, flag_rule: str = "populations") -> None:
        super().__init__(flag_rule=flag_rule)

    def score(self, trial: Trial) -> Scores:
        changed = np.array(trial.history.corrected)
        return Scores(changed.reshape(trial.n, -1).mean(1), pixel_flags=changed)


register_recipe(
    Recipe(
        name="spatial-correction",
        description="Spatial Correction (Yao et al., ICLR 2023): after epoch E/2 and every E/4 epochs after (never after "
        "the last), the boundary shift per class interface that best matches the trusted clean labels is estimated "
        "(-6..6 mm by 0.25 mm) and applied to the untrusted samples' predictions, which replace their labels where confident "
        "(> 0.9) or moved (then made valid); after training, score = fraction of pixels changed, population flags. Needs "
        "trusted patients.",
        corrector="spatial",
        detector="spatial",
        detect_at=1.0,
        corrector_params={"start": 0.5, "every": 0.25, "times": 3, "max_mm": 6.0, "step_mm": 0.25, "confidence": 0.9},
        detector_params={"flag_rule": "populations"},
    )
)
