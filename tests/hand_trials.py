"""Hand-made trials for testing methods without training: a model with fixed logits, and a Trial around given labels."""

from __future__ import annotations

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
