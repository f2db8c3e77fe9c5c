"""Hand-made trials for testing methods without (or with little) training: a model with fixed logits, Trials around given or
random blocky labels, one whole trial as a batch, a hand-drawn label map."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

import bench


class FixedLogits(torch.nn.Module):
    """A model that ignores its input and predicts the same logits (C, H, W) for every image; tests may change them."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), *self.logits.shape)


def hand_trial(model: torch.nn.Module, labels: np.ndarray, detect_epoch: int | None = None) -> bench.Trial:
    """A Trial on `tiny` (batch 8) with zero images, `labels` (N, H, W) as given and trained on, and `model` installed."""
    n, h, w = labels.shape
    inputs = bench.TrialInputs(
        protocol=bench.protocols.get("tiny"),
        seed=0,
        images=torch.zeros(n, 1, h, w),
        given=labels.astype(np.uint8),
        ids=tuple(f"s{i}" for i in range(n)),
        info=None,
        label_set=bench.CAMUS_LABELS,  # four classes, as the fixed-logit models predict
        device=torch.device("cpu"),
    )
    trial = bench.Trial(inputs, torch.from_numpy(labels.astype(np.int64)), torch.ones(n), torch.Generator())
    trial._model = model  # what the loop installs from the trainer's setup
    trial.detect_epoch = detect_epoch
    return trial


def block_label(h: int = 24, w: int = 24) -> np.ndarray:
    """A hand-drawn label map: a myocardium block (2) around an LV cavity (1), with a left atrium (3) below."""
    lab = np.zeros((h, w), np.uint8)
    lab[4:16, 6:18] = 2
    lab[6:14, 8:16] = 1
    lab[16:22, 8:16] = 3
    return lab


def random_block_trial(
    n: int = 6, size: int = 32, seed: int = 0, protocol: bench.Protocol | None = None, data_seed: int = 123
) -> bench.Trial:
    """A Trial on `tiny` (or `protocol`) at `size` px: random images and random 8-px blocky labels (all four classes)
    drawn from `data_seed`, trained on as given; `seed` is the trial's own."""
    protocol = protocol or dataclasses.replace(bench.protocols.get("tiny"), image_size=size)
    g = torch.Generator().manual_seed(data_seed)
    images = torch.rand(n, 1, size, size, generator=g)
    labels = torch.randint(0, 4, (n, size // 8, size // 8), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)
    inputs = bench.TrialInputs(
        protocol=protocol,
        seed=seed,
        images=images,
        given=labels.numpy().astype(np.uint8),
        ids=tuple(f"s{i}" for i in range(n)),
        info=None,
        label_set=bench.CAMUS_LABELS,
        device=torch.device("cpu"),
    )
    return bench.Trial(inputs, labels.clone(), torch.ones(n), torch.Generator().manual_seed(seed))


def batch_of(trial: bench.Trial, w: torch.Tensor | None = None, y: torch.Tensor | None = None) -> bench.Batch:
    """The whole trial as one batch (optionally other weights or labels)."""
    return bench.Batch(
        torch.arange(trial.n), trial.images, trial.label_tensor() if y is None else y, torch.ones(trial.n) if w is None else w
    )
