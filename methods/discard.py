"""Discarding: flagged samples are dropped from the loss for the rest of training (weight 0)."""

from __future__ import annotations

import numpy as np
import torch

from bench import Refurbisher, Refurbishment, Trial, refurbishers


@refurbishers.register("discard")
class Discard(Refurbisher):
    """Flagged samples get loss weight 0; their labels stay as given."""

    def refurbish(self, trial: Trial, flags: np.ndarray) -> Refurbishment:
        index = np.flatnonzero(flags)
        return Refurbishment(index, weights=torch.zeros(len(index)))
