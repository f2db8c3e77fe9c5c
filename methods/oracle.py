"""The oracle: flags exactly the truly corrupted samples. The ceiling for detection, not a method.

It reads the noise truth (`state.truth_corrupted`), which no real detector may
do; its recipes show how much refurbishing or discarding could gain with a
perfect detector. Scores are 1 for corrupted samples, 0 for clean ones.
"""

from __future__ import annotations

import numpy as np

from bench import Detector, TrialState, detectors, register_refurb_and_discard


@detectors.register("oracle")
class OracleDetector(Detector):
    """Score 1 for truly corrupted samples, 0 otherwise; flags = the true corrupted set."""

    def score(self, state: TrialState) -> np.ndarray:
        if state.truth_corrupted is None:
            raise RuntimeError("the oracle detector needs the noise truth in state.truth_corrupted")
        return state.truth_corrupted.astype(np.float64)

    def flag(self, scores: np.ndarray, state: TrialState) -> np.ndarray:
        return scores > 0.5


register_refurb_and_discard(
    "oracle",
    "Reference: the truly corrupted samples, known from the noise truth, {what} at half of training.",
    detector="oracle",
    detect_at=0.5,
)
