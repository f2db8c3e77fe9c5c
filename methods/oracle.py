"""The oracle: flags exactly the truly corrupted samples. The ceiling for detection, not a method.

It is a reference detector (`reference = True`): the only kind the trial hands the noise
truth (`trial.inputs.truth_corrupted`); its recipes show how much refurbishing or
discarding could gain with a perfect detector. Scores are 1 for corrupted samples, 0 for
clean ones.
"""

from __future__ import annotations

import numpy as np

from bench import Detector, Scores, Trial, detectors, register_refurb_and_discard


@detectors.register("oracle")
class OracleDetector(Detector):
    """Score 1 for truly corrupted samples, 0 otherwise; flags = the true corrupted set."""

    reference = True

    def score(self, trial: Trial) -> Scores:
        if trial.inputs.truth_corrupted is None:
            raise RuntimeError("the oracle detector needs the noise truth (trial.inputs.truth_corrupted)")
        return Scores(trial.inputs.truth_corrupted.astype(np.float64))

    def flag(self, scores: np.ndarray, trial: Trial) -> np.ndarray:
        return scores > 0.5


register_refurb_and_discard(
    "oracle",
    "Reference: the truly corrupted samples, known from the noise truth, {what} at half of training.",
    detector="oracle",
    detect_at=0.5,
)
