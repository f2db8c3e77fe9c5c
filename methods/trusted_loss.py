"""A loss detector calibrated on the trusted clean samples: flag what scores above the clean samples' 0.95 quantile.

Score: each sample's training loss averaged over the last `window` (3) epochs before detection, as the `loss`
detector's. Flags: the untrusted samples whose score exceeds the split-conformal `q` quantile of the trusted samples'
scores, q = 0.95: with n trusted scores sorted ascending, the threshold is the k-th, k = ceil((n + 1) q) (none is
flagged when k > n). Why that quantile: the trusted samples are a sample of clean labels trained on exactly as the clean
untrusted ones are, so a clean untrusted sample's score exceeds the threshold with probability at most 1 - q = 5%
(Vovk, Gammerman & Shafer, Algorithmic Learning in a Random World, 2005; Angelopoulos & Bates, "A Gentle Introduction
to Conformal Prediction", 2021, section 1: the finite-sample correction (n + 1) / n). The rule needs no assumption on
the shape of the scores (the mixture and population rules do) and bounds the false-flag rate instead of guessing the
corrupted share. Deviations from plain exchangeability: trusted samples come as whole patients (4 images each), so
their scores are correlated and the bound holds per patient rather than per image; with 24 trusted images (6
patients) k = 24, the largest trusted score. Trusted samples are never flagged (their labels are verified).

Recipe `loss-trusted-refurb`: this detector at three quarters of training (`DETECT_LATE`), the flagged samples
refurbished by generation 2's gated refurbisher with a temporal teacher (`GATED_REFURB`): on a protocol of recipe
generation 2 it differs from `loss-refurb` only in its flag rule. It needs trusted samples (`Protocol.trusted_patients`).
"""

from __future__ import annotations

import math

import numpy as np

from bench import Detector, Recipe, Scores, Trial, detectors, refurb_revisions, register_recipe


def conformal_threshold(clean_scores: np.ndarray, q: float) -> float:
    """The k-th smallest of `clean_scores`, k = ceil((n + 1) q) (split conformal); +inf when k > n (too few to bound)."""
    scores = np.sort(np.asarray(clean_scores, dtype=np.float64))
    k = math.ceil((len(scores) + 1) * q - 1e-12)  # the tolerance keeps (n + 1) q that is an integer from rounding up
    return float(scores[k - 1]) if 1 <= k <= len(scores) else math.inf


def trusted_of(trial: Trial, role: str) -> np.ndarray:
    """bool (N,): the trial's trusted samples; RuntimeError naming the protocol option when there are none."""
    trusted = trial.inputs.trusted
    if trusted is None or not trusted.any():
        raise RuntimeError(f"{role} needs trusted samples: run it on a protocol with trusted_patients > 0")
    return np.asarray(trusted, dtype=bool)


@detectors.register("loss-trusted")
class TrustedLossDetector(Detector):
    """Mean training loss over `window` epochs; flags (`flag_rule`): "trusted-quantile", the untrusted samples above the
    trusted scores' conformal `q` quantile, or a shared rule ("populations", `Detector.flag`), for comparison."""

    #: reads `trial.inputs.trusted`; a recipe with it cannot run on a protocol without trusted patients
    needs_trusted = True
    own_flag_rules = ("trusted-quantile",)

    def __init__(self, window: int = 3, q: float = 0.95, flag_rule: str = "trusted-quantile") -> None:
        super().__init__(window=window, q=q, flag_rule=flag_rule)
        if window < 1:
            raise ValueError("window must be at least 1 epoch")
        if not 0.0 < q < 1.0:
            raise ValueError("q must be in (0, 1)")
        self.window, self.q, self.flag_rule = window, q, flag_rule

    def score(self, trial: Trial) -> Scores:
        return Scores(np.mean(trial.history.losses[-self.window :], axis=0))

    def flag(self, scores: np.ndarray, trial: Trial) -> np.ndarray:
        trusted = trusted_of(trial, "detector loss-trusted")
        if self.flag_rule != "trusted-quantile":
            return ~trusted & np.asarray(super().flag(scores, trial), dtype=bool)
        scores = np.asarray(scores, dtype=np.float64)
        return ~trusted & (scores > conformal_threshold(scores[trusted], self.q))


#: generation 2's action and schedule (`DETECT_LATE`, `GATED_REFURB`), as `refurb_revisions` makes them for a -refurb recipe
_, _LATE_GATED = refurb_revisions(
    "Loss detector (mean loss over the 3 epochs before detection) at {when}, calibrated on the trusted clean samples: "
    "untrusted samples above the trusted scores' 0.95 quantile (split conformal) are flagged and {what}. Needs trusted patients."
)[0]

register_recipe(
    Recipe(
        name="loss-trusted-refurb",
        detector="loss-trusted",
        detector_params={"window": 3, "q": 0.95, "flag_rule": "trusted-quantile"},
        **_LATE_GATED,
    )
)
