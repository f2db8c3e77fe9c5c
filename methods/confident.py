"""Confident learning for segmentation (Northcutt et al., JAIR 2021), implemented natively (cleanlab is AGPL).

Probabilities: softmax of the model at the detection epoch on the training
images (`trial.predict()`, eval mode). These are late-epoch IN-SAMPLE
probabilities of a model that has been fitting these very labels, not the
out-of-sample (cross-validated) probabilities confident learning asks for; with
detection at half of training the model has not memorised the noise yet, which
is what makes this usable, but it does under-report issues the model already
fits. Labels: `trial.given` (the labels as given), so that pixel maps are in
the coordinates of the given annotation; at the detection epoch of these
recipes they equal `trial.labels`.

Per class k, the threshold t_k is the mean predicted probability of k over the
pixels whose given label is k (classes with no such pixel never clear theirs).
A pixel is a label issue when at least one class clears its threshold, the
highest-probability class among those that do is not the given label, and the
argmax of the pixel is not the given label either (cleanlab's "prediction
agrees with the label" exception). The issue maps are the detector's pixel maps
(N, H, W) bool.

Image score (higher = more suspicious), `score_method`:
- "fraction" (default): the fraction of the image's pixels that are issues;
- "softmin": 1 - cleanlab's softmin label quality, sum_i s_i softmax(-s / T)_i over
  the pixels' self-confidence s_i = p(given label), T = `temperature` (0.1).
Flags: the high component of a two-component mixture on the scores (`bench.mixture_flags`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from bench import Detector, Recipe, Scores, Trial, detectors, fit, methods, refurb_revisions, register_recipe

#: keep the whole training set's probabilities in memory up to this size; above it, predict twice
CACHE_BYTES = 1 << 30


def threshold_sums(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class k: sum of p_k over pixels labelled k, and their count (float64), for batched accumulation."""
    self_conf = probs.gather(1, labels.unsqueeze(1)).flatten().double()
    flat = labels.flatten()
    sums = torch.bincount(flat, weights=self_conf, minlength=num_classes)[:num_classes]
    counts = torch.bincount(flat, minlength=num_classes)[:num_classes].double()
    return sums, counts


def class_thresholds(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """t_k = mean p_k over pixels labelled k; +inf for a class nobody is labelled with. probs (N, C, H, W), labels (N, H, W)."""
    sums, counts = threshold_sums(probs, labels.long(), probs.shape[1])
    return torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(sums, float("inf")))


def pixel_issues(probs: torch.Tensor, labels: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Bool (N, H, W): some class clears its threshold, the most probable such class is not the label, nor is the argmax."""
    labels = labels.long()
    above = probs.double() >= thresholds.double().view(1, -1, 1, 1)
    confident_class = torch.where(above, probs, torch.full_like(probs, -1.0)).argmax(1)
    return above.any(1) & (confident_class != labels) & (probs.argmax(1) != labels)


def softmin_quality(self_confidence: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Per image (first axis): sum_i s_i softmax(-s / T)_i over the remaining axes, a soft minimum of s."""
    s = self_confidence.flatten(1).double()
    return (s * torch.softmax(-s / temperature, dim=1)).sum(1)


@detectors.register("confident")
class ConfidentDetector(Detector):
    """Confident-learning pixel issues at the detection epoch; score = fraction of issue pixels (or 1 - softmin quality).

    Flag rule: `flag_rule` (`Detector.flag`: the v1 mixture, or "populations").
    Pixel maps: the (N, H, W) issue maps. `thresholds` keeps the last per-class thresholds.
    """

    def __init__(self, score_method: str = "fraction", temperature: float = 0.1, flag_rule: str = "mixture") -> None:
        super().__init__(score_method=score_method, temperature=temperature, flag_rule=flag_rule)
        if score_method not in ("fraction", "softmin"):
            raise ValueError("score_method must be 'fraction' or 'softmin'")
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.score_method = score_method
        self.temperature = temperature
        self.thresholds: np.ndarray | None = None

    def probabilities(self, trial: Trial, rows: slice) -> torch.Tensor:
        """Softmax (B, C, H, W) of the training samples `rows`: here the trial's own model, in-sample."""
        return trial.predict(trial.images[rows])

    def score(self, trial: Trial) -> Scores:
        labels = torch.from_numpy(np.asarray(trial.given, dtype=np.int64))
        n, size, classes = trial.n, trial.protocol.batch_size, trial.inputs.num_classes
        batches = [slice(i, min(i + size, n)) for i in range(0, n, size)]
        cache = n * classes * labels[0].numel() * 4 <= CACHE_BYTES
        kept: list[torch.Tensor] = []
        sums = torch.zeros(classes, dtype=torch.float64)
        counts = torch.zeros(classes, dtype=torch.float64)
        for b in batches:
            probs = self.probabilities(trial, b)
            s, c = threshold_sums(probs, labels[b], classes)
            sums += s
            counts += c
            if cache:
                kept.append(probs)
        thresholds = torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(sums, float("inf")))
        issues = torch.zeros(labels.shape, dtype=torch.bool)
        scores = torch.zeros(n, dtype=torch.float64)
        for j, b in enumerate(batches):
            probs = kept[j] if cache else self.probabilities(trial, b)
            issues[b] = pixel_issues(probs, labels[b], thresholds)
            if self.score_method == "fraction":
                scores[b] = issues[b].flatten(1).double().mean(1)
            else:
                self_conf = probs.gather(1, labels[b].unsqueeze(1))
                scores[b] = 1.0 - softmin_quality(self_conf, self.temperature)
        self.thresholds = thresholds.numpy()
        return Scores(scores.numpy(), pixel_flags=issues.numpy())


register_recipe(
    Recipe(
        name="confident-refurb",
        description="Confident learning (per-class mean-probability thresholds, in-sample probabilities at half of training; "
        "score = fraction of issue pixels, mixture flags); flagged samples replaced by the model's pseudo-labels; training goes on.",
        detector="confident",
        refurbisher="pseudo-label",
        detect_at=0.5,
        revisions=refurb_revisions(
            "Confident learning (per-class mean-probability thresholds, in-sample probabilities at {when}; "
            "score = fraction of issue pixels, {rule}); flagged samples {what}; training goes on.",
            detector_params={"flag_rule": "populations"},
        ),
    )
)


@detectors.register("confident-cv")
class CrossFittedConfidentDetector(ConfidentDetector):
    """Confident learning on OUT-OF-SAMPLE probabilities: every training sample is predicted by a model that never saw it.

    At the detection epoch D the training set is cut into `folds` (K = 2) parts by a seeded
    permutation; for each part a fresh U-Net is trained with the standard recipe for D epochs
    on the other parts (the labels trained on then, the protocol's optimiser, its own seed in
    a forked RNG so the trial's own random stream is untouched) and predicts the held-out
    part. cleanlab's documentation asks for such K-fold probabilities; the in-sample variant
    (`confident`) uses the trial's own model, which has been fitting these very labels.
    Cost: (K - 1) x D extra epochs of training, counted in the record's `cost.detect_s`.
    Memory: the training set's probabilities (N x C x H x W float32). `folds_of` and
    `trained_on` keep which fold predicted each sample and which ids each fold model saw.
    """

    def __init__(self, folds: int = 2, score_method: str = "fraction", temperature: float = 0.1, flag_rule: str = "mixture") -> None:
        super().__init__(score_method=score_method, temperature=temperature, flag_rule=flag_rule)
        self.params["folds"] = folds
        if folds < 2:
            raise ValueError("cross-fitting needs at least 2 folds")
        self.folds = folds
        self.folds_of: np.ndarray | None = None
        self.trained_on: list[set[str]] = []
        self._probs: torch.Tensor | None = None

    def probabilities(self, trial: Trial, rows: slice) -> torch.Tensor:
        if self._probs is None:
            self._probs = self._cross_fit(trial)
        return self._probs[rows]

    def _cross_fit(self, trial: Trial) -> torch.Tensor:
        """The out-of-sample softmax of every training sample, from K fold models trained for the epochs so far."""
        n = trial.n
        order = np.random.default_rng([trial.seed, 20230]).permutation(n)
        self.folds_of = np.empty(n, dtype=np.int64)
        self.folds_of[order] = np.arange(n) % self.folds
        protocol = dataclasses.replace(trial.protocol, epochs=trial.epoch)
        recipe = methods.get("baseline")
        out = torch.zeros(n, trial.inputs.num_classes, *trial.given.shape[1:])
        self.trained_on = []
        for fold in range(self.folds):
            seen = np.flatnonzero(self.folds_of != fold)
            held = torch.from_numpy(np.flatnonzero(self.folds_of == fold))
            inputs = dataclasses.replace(
                trial.inputs,
                protocol=protocol,
                images=trial.images[torch.from_numpy(seen)],
                given=trial.given[seen],
                ids=tuple(trial.ids[i] for i in seen),
                info=None if trial.info is None else trial.info.iloc[seen].reset_index(drop=True),
                spacing=None if trial.inputs.spacing is None else trial.inputs.spacing[seen],
                truth_corrupted=None,
                truth_labels=None,
            )
            sub = Trial(inputs, trial.label_tensor(seen), torch.ones(len(seen)), torch.Generator().manual_seed(trial.seed * 7919 + fold))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(trial.seed * 7919 + 101 + fold)
                fitted = fit(sub, recipe).trial
            self.trained_on.append(set(inputs.ids))
            out[held] = fitted.predict(trial.images[held])
        return out


register_recipe(
    Recipe(
        name="confident-cv-refurb",
        description="Confident learning on out-of-sample probabilities (2-fold cross-fitting at half of training: two fresh "
        "U-Nets, each trained on one half and predicting the other; score = fraction of issue pixels, mixture flags); "
        "flagged samples replaced by the model's pseudo-labels; training goes on.",
        detector="confident-cv",
        refurbisher="pseudo-label",
        detect_at=0.5,
        detector_params={"folds": 2},
        revisions=refurb_revisions(
            "Confident learning on out-of-sample probabilities (2-fold cross-fitting at {when}: two fresh U-Nets, each "
            "trained on one half and predicting the other; score = fraction of issue pixels, {rule}); flagged samples "
            "{what}; training goes on.",
            detector_params={"flag_rule": "populations"},
        ),
    )
)
