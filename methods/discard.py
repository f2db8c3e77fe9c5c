"""Discarding: flagged samples are dropped from the loss for the rest of training (weight 0)."""

from __future__ import annotations

import numpy as np
import torch

from bench import Refurbisher, TrialState, refurbishers


@refurbishers.register("discard")
class Discard(Refurbisher):
    """Flagged samples get loss weight 0; their labels stay as given."""

    def apply(self, state: TrialState, flags: np.ndarray) -> None:
        flags = np.asarray(flags, dtype=bool)
        state.weights[torch.from_numpy(flags)] = 0.0
        state.refurbished = flags.copy()
