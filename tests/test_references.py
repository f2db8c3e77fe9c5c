"""The references (oracle-refurb, oracle-discard, oracle-restore): the only recipes handed the noise truth, said so in
their records; oracle-restore gives back exactly the clean labels."""

from __future__ import annotations

import numpy as np

import bench
from bench.noise import apply_noise
from bench.training import fit
from bench.trial import initial_trial, protocol_data, seed_everything


def test_only_references_read_the_truth():
    references = {name for name in bench.methods.names() if bench.methods.get(name).reference}
    assert references == {"oracle-refurb", "oracle-discard", "oracle-restore"}
    proto = bench.protocols.get("tiny")
    train = protocol_data(proto)["train"]
    noisy = apply_noise("systematic:0.5", train.labels, train.spacing, train.ids, 0, info=train.info)
    for name in ("loss-refurb", "oracle-restore"):
        inputs = initial_trial(proto, 0, train, noisy, bench.methods.get(name)).inputs
        has_truth = inputs.truth_corrupted is not None and inputs.truth_labels is not None
        assert has_truth == (name == "oracle-restore"), name


def test_oracle_restore_puts_back_exactly_the_clean_labels():
    proto = bench.protocols.get("tiny")
    seed_everything(0)
    train = protocol_data(proto)["train"]
    noisy = apply_noise("systematic:0.5", train.labels, train.spacing, train.ids, 0, info=train.info)
    recipe = bench.methods.get("oracle-restore")
    result = fit(initial_trial(proto, 0, train, noisy, recipe), recipe)
    np.testing.assert_array_equal(result.refurbished, noisy.corrupted)
    np.testing.assert_array_equal(result.trial.labels, train.labels)  # every corrupted label restored, nothing else touched
    assert (noisy.labels != train.labels).any()  # the case is not trivial


def test_records_say_whether_a_recipe_is_a_reference():
    restored = bench.run_trial("tiny", "oracle-restore", "omission:0.5", seed=0)
    assert restored.method["reference"] is True
    refurb = restored.metrics["refurbishment"]["corrupted"]
    assert refurb["label_dice_after"] == 1.0 and refurb["label_dice_before"] < 1.0
    assert bench.run_trial("tiny", "baseline", "omission:0.5", seed=0).method["reference"] is False
