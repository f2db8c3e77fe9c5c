"""The references: ceilings that read the noise truth, so that detection and refurbishment are judged apart.

- detector `oracle`: flags exactly the truly corrupted samples (scores 1, clean ones 0);
- refurbisher `restore`: puts the clean labels back on the flagged samples.

Both declare `reference = True`, the only roles the trial hands the truth
(`trial.inputs.truth_corrupted`, `trial.inputs.truth_labels`). Recipes: `oracle-refurb` /
`oracle-discard` (a perfect detector, the usual refurbishment: what detection alone can
give) and `oracle-restore` (perfect detection and perfect refurbishment: the labels of
the clean data from the detection epoch on). They are not methods: records carry
`method.reference: true`.
"""

from __future__ import annotations

import numpy as np
import torch

from bench import (
    DETECT_LATE,
    Detector,
    Recipe,
    Refurbisher,
    Refurbishment,
    Scores,
    Trial,
    detectors,
    refurbishers,
    register_recipe,
    register_refurb_and_discard,
)


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
    "Reference: the truly corrupted samples, known from the noise truth, {what} at {when}.",
    detector="oracle",
    detect_at=0.5,
)


@refurbishers.register("restore")
class Restore(Refurbisher):
    """Flagged labels := the clean labels (a reference: what perfect refurbishment gives)."""

    reference = True

    def refurbish(self, trial: Trial, flags: np.ndarray) -> Refurbishment:
        if trial.inputs.truth_labels is None:
            raise RuntimeError("the restore refurbisher needs the clean labels (trial.inputs.truth_labels)")
        index = np.flatnonzero(flags)
        return Refurbishment(index, labels=torch.from_numpy(trial.inputs.truth_labels[index].astype(np.int64)))


register_recipe(
    Recipe(
        name="oracle-restore",
        description="Reference: the truly corrupted samples, known from the noise truth, get their clean labels back at half "
        "of training (perfect detection and refurbishment).",
        detector="oracle",
        refurbisher="restore",
        detect_at=0.5,
        revisions=(
            (
                2,
                {
                    **DETECT_LATE,
                    "description": "Reference: the truly corrupted samples, known from the noise truth, get their clean "
                    "labels back at three quarters of training (perfect detection and refurbishment).",
                },
            ),
        ),
    )
)
