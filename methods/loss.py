"""Loss-based label-error detection: samples the model keeps getting wrong are suspicious.

Score: each sample's training loss (the protocol's per-sample CE + Dice loss,
recorded from the training pass itself) averaged over the last `window` epochs
before detection. Flags: the high component of a two-component Gaussian
mixture on the scores (`bench.mixture_flags`, the default flag rule).
"""

from __future__ import annotations

import numpy as np

from bench import Detector, Scores, Trial, detectors, register_refurb_and_discard


@detectors.register("loss")
class LossDetector(Detector):
    """Mean per-sample training loss over a window of epochs; flags by a 2-component mixture."""

    def __init__(self, window: int = 3) -> None:
        super().__init__(window=window)
        if window < 1:
            raise ValueError("window must be at least 1 epoch")
        self.window = window

    def score(self, trial: Trial) -> Scores:
        return Scores(np.mean(trial.history.losses[-self.window :], axis=0))


register_refurb_and_discard(
    "loss",
    "Loss detector (mean loss over the 3 epochs before detection, mixture flags) at half of training; "
    "flagged samples {what}; training goes on.",
    detector="loss",
    detect_at=0.5,
    detector_params={"window": 3},
)
