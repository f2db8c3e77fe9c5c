"""Loss-based label-error detection: samples the model keeps getting wrong are suspicious.

Score: each sample's training loss (the protocol's per-sample CE + Dice loss,
recorded from the training pass itself) averaged over the last `window` epochs
before detection. Flags: the high component of a two-component Gaussian
mixture on the scores (`bench.mixture_flags`).
"""

from __future__ import annotations

import numpy as np

from bench import Detector, Recipe, TrialState, detectors, mixture_flags, register_recipe


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


for _name, _refurbisher, _what in (
    ("loss-refurb", "pseudo-label", "replaced by the model's pseudo-labels"),
    ("loss-discard", "discard", "dropped from the loss"),
):
    register_recipe(
        Recipe(
            name=_name,
            description="Loss detector (mean loss over the 3 epochs before detection, mixture flags) at half of "
            f"training; flagged samples {_what}; training goes on.",
            detector="loss",
            refurbisher=_refurbisher,
            detect_at=0.5,
            detector_params={"window": 3},
        )
    )
