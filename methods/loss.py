"""Loss-based label-error detection: samples the model keeps getting wrong are suspicious.

Score: each sample's training loss (the protocol's per-sample CE + Dice loss,
recorded from the training pass itself) averaged over the last `window` epochs
before detection. Flags: the high component of a two-component Gaussian
mixture on the scores (`bench.mixture_flags`).
"""

from __future__ import annotations

import numpy as np

from bench import Detector, TrialState, detectors, mixture_flags, register_refurb_and_discard


@detectors.register("loss")
class LossDetector(Detector):
    """Mean per-sample training loss over a window of epochs; flags by a 2-component mixture."""

    def __init__(self, window: int = 3) -> None:
        super().__init__(window=window)
        if window < 1:
            raise ValueError("window must be at least 1 epoch")
        self.window = window

    def score(self, state: TrialState) -> np.ndarray:
        return np.mean(state.losses[-self.window :], axis=0)

    def flag(self, scores: np.ndarray, state: TrialState) -> np.ndarray:
        return mixture_flags(scores)


register_refurb_and_discard(
    "loss",
    "Loss detector (mean loss over the 3 epochs before detection, mixture flags) at half of training; "
    "flagged samples {what}; training goes on.",
    detector="loss",
    detect_at=0.5,
    detector_params={"window": 3},
)
