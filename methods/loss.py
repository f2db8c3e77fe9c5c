"""Loss-based label-error detection: samples the model keeps getting wrong are suspicious.

Score: each sample's training loss (the protocol's per-sample CE + Dice loss,
recorded from the training pass itself) averaged over the last `window` epochs
before detection. Flags (`flag_rule`, `Detector.flag`): the high component of a
two-component Gaussian mixture ("mixture", generation 1), or a second, higher
population when there is one ("populations", generation 2).
"""

from __future__ import annotations

import numpy as np

from bench import Detector, Scores, Trial, detectors, register_refurb_and_discard


@detectors.register("loss")
class LossDetector(Detector):
    """Mean per-sample training loss over a window of epochs; flags by the shared rule `flag_rule` names."""

    def __init__(self, window: int = 3, flag_rule: str = "mixture") -> None:
        super().__init__(window=window, flag_rule=flag_rule)
        if window < 1:
            raise ValueError("window must be at least 1 epoch")
        self.window = window

    def score(self, trial: Trial) -> Scores:
        return Scores(np.mean(trial.history.losses[-self.window :], axis=0))


register_refurb_and_discard(
    "loss",
    "Loss detector (mean loss over the 3 epochs before detection, {rule}) at {when}; flagged samples {what}; training goes on.",
    revised={"detector_params": {"flag_rule": "populations"}},
    detector="loss",
    detect_at=0.5,
    detector_params={"window": 3},
)
