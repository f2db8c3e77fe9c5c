"""Cross-fitted confident learning: every sample's probabilities come from a model that never saw it, and the fold
models leave the trial's own random stream alone."""

from __future__ import annotations

import numpy as np
import torch

import bench
from bench.noise import apply_noise
from bench.training import fit
from bench.trial import initial_trial, protocol_data, seed_everything


def test_cross_fitted_probabilities_never_come_from_a_model_that_saw_the_sample():
    proto = bench.protocols.get("tiny")
    seed_everything(0)
    train = protocol_data(proto)["train"]
    noisy = apply_noise("systematic:0.5", train.labels, train.spacing, train.ids, 0, info=train.info)
    recipe = bench.methods.get("confident-cv-refurb")
    result = fit(initial_trial(proto, 0, train, noisy, recipe), recipe)
    det = result.detector
    ids = result.trial.ids
    assert sorted(np.bincount(det.folds_of).tolist()) == [len(ids) // 2, len(ids) - len(ids) // 2]  # two halves
    for i, fold in enumerate(det.folds_of):
        assert ids[i] not in det.trained_on[fold]  # predicted by the model that did not train on it
        assert all(ids[i] in seen for k, seen in enumerate(det.trained_on) if k != fold)  # and trained every other one
    assert result.scores.pixel_flags.shape == noisy.labels.shape


def test_fold_models_leave_the_trials_random_stream_alone():
    proto = bench.protocols.get("tiny")
    train = protocol_data(proto)["train"]
    noisy = apply_noise("none", train.labels, train.spacing, train.ids, 0)
    recipe = bench.methods.get("confident-cv-refurb")
    trial = initial_trial(proto, 0, train, noisy, recipe)
    torch.manual_seed(5)
    trial._model = bench.build_model(proto)  # what the loop installs from the trainer's setup
    trial.history.append(np.zeros(trial.n), np.zeros((trial.n, 3, 3), np.int64), np.full(trial.n, np.nan))
    before = torch.random.get_rng_state()
    bench.detectors.get("confident-cv")().score(trial)
    assert torch.equal(torch.random.get_rng_state(), before)
