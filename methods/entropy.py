"""Prediction entropy: samples whose prediction the model is unsure about are suspicious.

The worked example of CONTRIBUTING.md: a whole detector in one file. At the detection
epoch the model (eval mode) predicts every training image; a sample's score is the mean
over its pixels of the Shannon entropy of the softmax, -sum_c p_c log p_c, divided by
log C so that 0 is a certain prediction and 1 a uniform one. A label the image does not
support leaves the model torn between what it learned from the image and what it was
told, so its pixels stay uncertain (predictive entropy as an error signal: e.g. Rottmann &
Reese, arXiv 2207.06104, who aggregate it per connected component). The score ignores
the given label itself, so it also rises on images that are merely hard. Flags: the
default rule of every detector that does not choose its own (`Detector.flag`).
"""

from __future__ import annotations

import math

import numpy as np

from bench import Detector, Recipe, Scores, Trial, detectors, refurb_revisions, register_recipe


@detectors.register("entropy")
class EntropyDetector(Detector):
    """Score: mean pixel entropy of the model's prediction, in units of log(classes) (0 certain, 1 uniform)."""

    def score(self, trial: Trial) -> Scores:
        size = trial.protocol.batch_size
        scores = []
        for start in range(0, trial.n, size):  # batches, so memory stays one batch of probabilities
            probs = trial.predict(trial.images[start : start + size])  # (B, C, H, W), eval mode, on the CPU
            entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1) / math.log(probs.shape[1])
            scores.append(entropy.flatten(1).mean(1).double().numpy())
        return Scores(np.concatenate(scores))


register_recipe(
    Recipe(
        name="entropy-refurb",
        description="Prediction-entropy detector (mean pixel entropy of the model's softmax at half of training, "
        "mixture flags); flagged samples replaced by the model's pseudo-labels; training goes on.",
        detector="entropy",
        refurbisher="pseudo-label",
        detect_at=0.5,
        revisions=refurb_revisions(
            "Prediction-entropy detector (mean pixel entropy of the model's softmax at {when}, {rule}); flagged samples "
            "{what}; training goes on.",
            detector_params={"flag_rule": "populations"},
        ),
    )
)
