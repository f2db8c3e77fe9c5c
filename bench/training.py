"""The training loop with hooks, its per-trial state, and the standard trainer.

One `TrialState` holds everything a method may look at or change; the loop
records every sample's training loss every epoch (from the batched forward pass
it trains on, so bookkeeping costs nothing extra) and calls the recipe's
detector after each epoch. Detection and refurbishment happen once, after the
recipe's detection epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bench.data import STRUCTURES
from bench.method import Detector, Recipe, Refurbisher, Trainer, detectors, refurbishers, trainers
from bench.model import NUM_CLASSES, build_model
from bench.protocols import Protocol


@dataclass(eq=False)
class TrialState:
    """Per-trial state passed to every hook; the only mutable thing a method touches."""

    protocol: Protocol
    seed: int
    images: torch.Tensor  # float32 (N, 1, H, W) in [0, 1]
    given: np.ndarray  # uint8 (N, H, W): the (noisy) training labels as given, never changed
    labels: torch.Tensor  # int64 (N, H, W): the labels trained on now (refurbishers change them)
    weights: torch.Tensor  # float32 (N,): per-sample loss weights (discarding sets 0)
    ids: list[str]
    generator: torch.Generator
    model: torch.nn.Module | None = None
    epoch: int = 0
    detect_epoch: int | None = None  # after which epoch the recipe detects (None: no detector)
    info: pd.DataFrame | None = None  # one metadata row per training sample (id, patient, view, phase, ...)
    losses: list[np.ndarray] = field(default_factory=list)  # one (N,) array per finished epoch
    #: one (N, 3, 3) int array per finished epoch: per sample and structure, pixels of
    #: (prediction AND training label, prediction, training label), from the training pass itself
    overlaps: list[np.ndarray] = field(default_factory=list)
    scores: np.ndarray | None = None
    flags: np.ndarray | None = None
    refurbished: np.ndarray | None = None  # bool (N,): samples whose label or weight a refurbisher changed
    pixel_flags: np.ndarray | None = None  # bool (N, H, W): pixels a detector marks as mislabelled, where it gives maps
    #: the noise truth (which samples are corrupted); only reference detectors (`oracle`) may read it
    truth_corrupted: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # per-method scratch space
    #: where the model runs; the tensors above stay on the CPU and batches move (see bench.device)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def n(self) -> int:
        """Number of training samples."""
        return len(self.ids)

    def batches(self, shuffle: bool) -> list[torch.Tensor]:
        """Sample indices in batches of the protocol's size (a seeded shuffle when training)."""
        order = torch.randperm(self.n, generator=self.generator) if shuffle else torch.arange(self.n)
        return list(order.split(self.protocol.batch_size))

    @torch.no_grad()
    def predict(self, images: torch.Tensor | None = None, model: torch.nn.Module | None = None) -> torch.Tensor:
        """Softmax probabilities (N, C, H, W), on the CPU, of `model` (default: state.model) on `images` (default: training images)."""
        model = model or self.model
        images = self.images if images is None else images
        was_training = model.training
        model.eval()
        size = self.protocol.batch_size
        out = [torch.softmax(model(images[i : i + size].to(self.device)), 1).cpu() for i in range(0, len(images), size)]
        model.train(was_training)
        return torch.cat(out)


def overlaps(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) pixel counts per sample and structure: (pred AND target, pred, target), from label maps (B, H, W)."""
    values = torch.tensor(list(STRUCTURES), device=pred.device).view(1, -1, 1, 1)
    p = pred.unsqueeze(1) == values
    t = target.unsqueeze(1) == values
    return torch.stack([(p & t).flatten(2).sum(2), p.flatten(2).sum(2), t.flatten(2).sum(2)], dim=2)


def overlap_dice(counts: np.ndarray) -> np.ndarray:
    """Per-sample, per-structure Dice (..., 3) from `overlaps` counts; 1 where both are empty."""
    inter, pred, target = counts[..., 0], counts[..., 1], counts[..., 2]
    total = pred + target
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float) -> torch.Tensor:
    """Cross-entropy (mean over pixels) + dice_weight x (1 - mean foreground soft Dice), one value per sample."""
    ce = F.cross_entropy(logits, target, reduction="none").flatten(1).mean(1)
    if dice_weight == 0:
        return ce
    prob = torch.softmax(logits, 1)[:, 1:].flatten(2)
    onehot = F.one_hot(target, NUM_CLASSES).permute(0, 3, 1, 2)[:, 1:].flatten(2).to(prob.dtype)
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


@trainers.register("standard")
class StandardTrainer(Trainer):
    """One U-Net, Adam, the protocol's per-sample loss weighted by `state.weights`."""

    def setup(self, state: TrialState) -> None:
        p = state.protocol
        state.model = build_model(p, state.device)
        self.optimizer = torch.optim.Adam(state.model.parameters(), lr=p.lr, weight_decay=p.weight_decay)

    def step(
        self, state: TrialState, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        state.model.train()
        logits = state.model(x)
        losses = per_sample_loss(logits, y, state.protocol.dice_weight)
        weighted_update(self.optimizer, losses, w)
        return losses.detach(), logits.detach()


@dataclass
class TrainResult:
    """What the loop hands to evaluation: the final state and its cost."""

    state: TrialState
    detector: Detector | None
    train_s: float
    detect_s: float
    epochs_s: list[float]


EpochCallback = Callable[[int, float], None]


def fit(state: TrialState, recipe: Recipe, on_epoch: EpochCallback | None = None) -> TrainResult:
    """Train `state` with `recipe` for the protocol's epochs; detect and refurbish once on schedule."""
    trainer = trainers.get(recipe.trainer)(**recipe.trainer_params)
    detector = detectors.get(recipe.detector)(**recipe.detector_params) if recipe.detector else None
    refurbisher: Refurbisher | None = refurbishers.get(recipe.refurbisher)(**recipe.refurbisher_params) if recipe.refurbisher else None
    trainer.setup(state)
    epochs = state.protocol.epochs
    detect_epoch = recipe.detect_epoch(epochs) if detector else None
    state.detect_epoch = detect_epoch
    start = time.perf_counter()
    detect_s = 0.0
    epochs_s = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        epoch_losses = torch.zeros(state.n)
        epoch_overlaps = torch.zeros(state.n, len(STRUCTURES), 3, dtype=torch.int64)
        for index in state.batches(shuffle=True):
            x, y, w = (t[index].to(state.device) for t in (state.images, state.labels, state.weights))
            losses, logits = trainer.step(state, index, x, y, w)
            epoch_losses[index] = losses.cpu()
            epoch_overlaps[index] = overlaps(logits.argmax(1), y).cpu()
        if not torch.isfinite(epoch_losses).all():
            raise FloatingPointError(f"training loss is not finite at epoch {epoch + 1}; the trial is recorded as failed")
        state.losses.append(epoch_losses.numpy().astype(np.float64))
        state.overlaps.append(epoch_overlaps.numpy())
        state.epoch = epoch + 1
        t1 = time.perf_counter()
        if detector is not None:
            detector.on_epoch_end(state)
            if state.epoch == detect_epoch:
                state.scores = np.asarray(detector.score(state), dtype=np.float64)
                state.flags = np.asarray(detector.flag(state.scores, state), dtype=bool)
                if state.scores.shape != (state.n,) or state.flags.shape != (state.n,):
                    raise RuntimeError(f"detector {recipe.detector} must return one score and flag per training sample")
                if refurbisher is not None:
                    refurbisher.apply(state, state.flags)
        detect_s += time.perf_counter() - t1
        epochs_s.append(time.perf_counter() - t0)
        if on_epoch is not None:
            on_epoch(state.epoch, float(state.losses[-1].mean()))
    return TrainResult(state, detector, time.perf_counter() - start, detect_s, epochs_s)
