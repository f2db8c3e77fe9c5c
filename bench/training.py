"""The training loop: the one writer of a trial's history, labels, weights and model.

Every epoch the loop trains on seeded batches through the recipe's trainer, records each
sample's training loss and its overlap with the training label (from the batched pass it
trained on, so bookkeeping costs nothing extra), applies the corrector's correction, lets
the refurbisher and the detector watch, and at the recipe's detection epoch asks the
detector for scores and flags and the refurbisher for its refurbishment, which it applies
(once, or again every `refurbish_every` epochs on the same flags). Methods answer
through return values (`bench.method`); none of them writes the trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bench import augment
from bench.labelmaps import dice_from_counts
from bench.method import (
    Batch,
    Corrector,
    Detector,
    Recipe,
    Refurbisher,
    Refurbishment,
    Scores,
    Trainer,
    Trial,
    correctors,
    detectors,
    refurbishers,
    trainers,
)
from bench.protocols import Protocol

#: what `fit` hands an epoch callback: (finished epochs, mean training loss of the last one)
EpochCallback = Callable[[int, float], None]


def overlaps(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, S, 3) pixel counts per sample and structure 1..num_classes-1: (pred AND target, pred, target), from label maps (B, H, W)."""
    values = torch.arange(1, num_classes, device=pred.device).view(1, -1, 1, 1)
    p = pred.unsqueeze(1) == values
    t = target.unsqueeze(1) == values
    return torch.stack([(p & t).flatten(2).sum(2), p.flatten(2).sum(2), t.flatten(2).sum(2)], dim=2)


def overlap_dice(counts: np.ndarray) -> np.ndarray:
    """Per-sample, per-structure Dice (..., S) from `overlaps` counts; 1 where both are empty."""
    return dice_from_counts(counts[..., 0], counts[..., 1], counts[..., 2])


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float) -> torch.Tensor:
    """Cross-entropy (mean over pixels) + dice_weight x (1 - mean foreground soft Dice), one value per sample."""
    ce = F.cross_entropy(logits, target, reduction="none").flatten(1).mean(1)
    if dice_weight == 0:
        return ce
    prob = torch.softmax(logits, 1)[:, 1:].flatten(2)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].flatten(2).to(prob.dtype)
    inter = (prob * onehot).sum(2)
    denom = prob.sum(2) + onehot.sum(2)
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return ce + dice_weight * (1 - dice.mean(1))


def weighted_update(optimizer: torch.optim.Optimizer, objective: torch.Tensor, w: torch.Tensor) -> None:
    """One optimiser step on the `w`-weighted mean of the per-sample `objective`; no step when every weight is 0."""
    total = w.sum()
    if total > 0:
        optimizer.zero_grad(set_to_none=True)
        ((objective * w).sum() / total).backward()
        optimizer.step()


@dataclass
class TrainResult:
    """What the loop hands to evaluation: the trial as trained, the detector's answer, what was refurbished, the cost."""

    trial: Trial
    detector: Detector | None
    scores: Scores | None
    flags: np.ndarray | None
    #: bool (N,): samples a refurbisher acted on (or, for a corrector, the flagged ones); None without either
    refurbished: np.ndarray | None
    train_s: float
    detect_s: float
    epochs_s: list[float]


def _check_scores(scores: Scores, flags: np.ndarray, trial: Trial, name: str) -> None:
    if scores.values.shape != (trial.n,) or flags.shape != (trial.n,):
        raise RuntimeError(f"detector {name} must return one score and flag per training sample")
    if scores.pixel_flags is not None and scores.pixel_flags.shape != trial.given.shape:
        raise RuntimeError(f"detector {name}: pixel maps must be bool (N, H, W) like the training labels")


def _apply(trial: Trial, refurbishment: Refurbishment, name: str) -> np.ndarray:
    """Apply a refurbishment to the trial's labels and weights; the samples it acted on, as a bool (N,) mask."""
    index = np.asarray(refurbishment.index, dtype=np.int64)
    if index.ndim != 1 or (index.size and (index.min() < 0 or index.max() >= trial.n)) or len(np.unique(index)) != index.size:
        raise RuntimeError(f"refurbisher {name} must return distinct sample positions in 0..{trial.n - 1}")
    where = torch.from_numpy(index)
    if refurbishment.labels is not None:
        if tuple(refurbishment.labels.shape) != (index.size, *trial.given.shape[1:]):
            raise RuntimeError(f"refurbisher {name}: new labels must be (K, H, W) for its K samples")
        if index.size:
            trial._labels[where] = refurbishment.labels.to(trial._labels.dtype)
    if refurbishment.weights is not None:
        if tuple(refurbishment.weights.shape) != (index.size,):
            raise RuntimeError(f"refurbisher {name}: new weights must be one per sample acted on")
        if index.size:
            trial._weights[where] = refurbishment.weights.to(trial._weights.dtype)
    acted = np.zeros(trial.n, dtype=bool)
    acted[index] = True
    return acted


def _correct(trial: Trial, corrector: Corrector, name: str) -> None:
    """Apply one correction (new labels for the whole set) and record the pixels it changed."""
    new = corrector.correct(trial)
    if new is None:
        return
    if tuple(new.shape) != tuple(trial._labels.shape):
        raise RuntimeError(f"corrector {name} must return labels (N, H, W) for the whole training set")
    changed = new != trial._labels
    trial.history.add_corrected(changed.numpy())
    trial._labels.copy_(new)


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of 0-based epoch `epoch` of `epochs` relative to the initial one: "constant" 1; "poly"
    (1 - epoch / epochs)^0.9, nnU-Net's schedule (Isensee et al., Nature Methods 2021), per epoch."""
    if schedule == "constant":
        return 1.0
    if schedule == "poly":
        return (1.0 - epoch / epochs) ** 0.9
    raise ValueError(f"lr_schedule must be 'constant' or 'poly', not {schedule!r}")


def lr_schedulers(trainer: Trainer, protocol: Protocol) -> list[torch.optim.lr_scheduler.LRScheduler]:
    """One scheduler per optimiser of the trainer for the protocol's schedule; none for "constant" (nothing changes)."""
    lr_factor(protocol.lr_schedule, 0, protocol.epochs)  # an unknown schedule fails here, before any epoch
    if protocol.lr_schedule == "constant":
        return []
    return [
        torch.optim.lr_scheduler.LambdaLR(opt, lambda e, s=protocol.lr_schedule, n=protocol.epochs: lr_factor(s, e, n))
        for opt in trainer.scheduled_optimizers()
    ]


def fit(trial: Trial, recipe: Recipe, on_epoch: EpochCallback | None = None) -> TrainResult:
    """Train `trial` with `recipe` for the protocol's epochs; correct every epoch, detect and refurbish once on schedule."""
    trainer = trainers.get(recipe.trainer)(**recipe.trainer_params)
    detector = detectors.get(recipe.detector)(**recipe.detector_params) if recipe.detector else None
    refurbisher: Refurbisher | None = refurbishers.get(recipe.refurbisher)(**recipe.refurbisher_params) if recipe.refurbisher else None
    corrector = correctors.get(recipe.corrector)(**recipe.corrector_params) if recipe.corrector else None
    trial._model = trainer.setup(trial)
    epochs = trial.protocol.epochs
    schedulers = lr_schedulers(trainer, trial.protocol)
    num_classes = trial.inputs.num_classes
    trial.detect_epoch = recipe.detect_epoch(epochs) if detector else None
    scores = flags = refurbished = None
    start = time.perf_counter()
    detect_s = 0.0
    epochs_s = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        epoch_losses = torch.zeros(trial.n)
        epoch_overlaps = torch.zeros(trial.n, num_classes - 1, 3, dtype=torch.int64)
        epoch_selected = torch.full((trial.n,), float("nan"), dtype=torch.float64)
        augmentation = augment.draw(trial.protocol.augment, trial.seed, epoch, trial.n)
        for index in trial.batches(shuffle=True):
            x, y = trial.images[index], trial._labels[index]
            if augmentation is not None:
                x, y = augment.apply(x, y, augmentation[index])
            batch = Batch(index, x.to(trial.device), y.to(trial.device), trial._weights[index].to(trial.device))
            step = trainer.step(trial, batch)
            epoch_losses[index] = step.losses.cpu()
            epoch_overlaps[index] = overlaps(step.logits.argmax(1), batch.y, num_classes).cpu()
            if step.selected is not None:
                epoch_selected[index] = step.selected.cpu().double()
        if not torch.isfinite(epoch_losses).all():
            raise FloatingPointError(f"training loss is not finite at epoch {epoch + 1}; the trial is recorded as failed")
        trial.history.append(epoch_losses.numpy(), epoch_overlaps.numpy(), epoch_selected.numpy())
        t1 = time.perf_counter()
        if corrector is not None:
            _correct(trial, corrector, recipe.corrector)
        if refurbisher is not None:
            refurbisher.on_epoch_end(trial)
        if detector is not None:
            detector.on_epoch_end(trial)
            if trial.epoch == trial.detect_epoch:
                scores = detector.score(trial)
                scores = Scores(np.asarray(scores.values, dtype=np.float64), scores.pixel_flags)
                flags = np.asarray(detector.flag(scores.values, trial), dtype=bool)
                _check_scores(scores, flags, trial, recipe.detector)
                if refurbisher is not None:
                    refurbished = _apply(trial, refurbisher.refurbish(trial, flags), recipe.refurbisher)
                elif corrector is not None:
                    refurbished = flags.copy()
            elif refurbisher is not None and flags is not None and recipe.refurbish_every is not None:
                if (trial.epoch - trial.detect_epoch) % recipe.refurbish_every == 0:  # again, on the same flags
                    refurbished |= _apply(trial, refurbisher.refurbish(trial, flags), recipe.refurbisher)
        detect_s += time.perf_counter() - t1
        for scheduler in schedulers:
            scheduler.step()
        epochs_s.append(time.perf_counter() - t0)
        if on_epoch is not None:
            on_epoch(trial.epoch, float(trial.history.losses[-1].mean()))
    return TrainResult(trial, detector, scores, flags, refurbished, time.perf_counter() - start, detect_s, epochs_s)
