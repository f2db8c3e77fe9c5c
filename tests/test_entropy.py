"""The prediction-entropy detector (CONTRIBUTING's worked example) against entropies computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hand_trials import FixedLogits, hand_trial

import bench


def trial_with(model: torch.nn.Module, n: int = 5) -> bench.Trial:
    """n samples (batch size 8: n = 11 spans two batches) of the model's image size."""
    return hand_trial(model, np.zeros((n, *model.logits.shape[1:]), dtype=np.uint8))


@pytest.mark.parametrize("n", [5, 11])
def test_entropy_by_hand(n):
    # pixel 0: uniform over 4 classes (entropy log 4 -> 1); pixel 1: certain (-> 0);
    # pixel 2: p = (1/2, 1/2, 0, 0) (log 2 / log 4 = 1/2); pixel 3: (0.7, 0.1, 0.1, 0.1)
    probs = torch.tensor(
        [[0.25, 1.0, 0.5, 0.7], [0.25, 0.0, 0.5, 0.1], [0.25, 0.0, 0.0, 0.1], [0.25, 0.0, 0.0, 0.1]], dtype=torch.float64
    ).view(4, 2, 2)
    logits = probs.clamp_min(1e-30).log().float()
    by_hand = [1.0, 0.0, 0.5, -(0.7 * math.log(0.7) + 3 * 0.1 * math.log(0.1)) / math.log(4)]
    scores = bench.detectors.get("entropy")().score(trial_with(FixedLogits(logits), n))
    assert scores.pixel_flags is None and scores.values.shape == (n,)
    np.testing.assert_allclose(scores.values, np.mean(by_hand), rtol=1e-5)


def test_a_sure_model_scores_lower_than_an_unsure_one():
    sure = torch.zeros(4, 2, 2)
    sure[1] = 20.0
    unsure = torch.zeros(4, 2, 2)
    det = bench.detectors.get("entropy")()
    assert det.score(trial_with(FixedLogits(sure))).values.max() < 1e-6
    np.testing.assert_allclose(det.score(trial_with(FixedLogits(unsure))).values, 1.0, rtol=1e-6)
