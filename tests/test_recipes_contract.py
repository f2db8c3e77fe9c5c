"""The contract every registered recipe meets, so a method added by pull request is covered without new tests.

On the tiny protocol: a valid record; with a detector, one finite score and one
flag per training sample, the flags a subset of the samples; and the same
trial twice gives the same metrics and the same scores.
"""

import math

import pytest

import bench
from bench.record import Record

NOISE = "systematic:0.5,mm=5"


@pytest.fixture(scope="module")
def records():
    cache = {}

    def get(method: str, run: int = 0):
        if (method, run) not in cache:
            cache[method, run] = bench.run_trial("tiny", method, NOISE, seed=0)
        return cache[method, run]

    return get


@pytest.mark.parametrize("method", bench.methods.names())
def test_recipe_contract(method, records):
    recipe = bench.methods.get(method)
    record = records(method)
    assert Record.problems(record.to_dict()) == []
    assert record.method["name"] == method
    n_train = record.dataset["n_train"]
    samples = record.per_sample
    if recipe.detector is None:
        assert samples is None and record.metrics["detection"] is None
        return
    assert len(samples["scores"]) == len(samples["flags"]) == n_train
    assert all(math.isfinite(s) for s in samples["scores"])
    assert set(samples["flags"]) <= {0, 1}
    assert record.metrics["detection"]["n_flagged"] == sum(samples["flags"])
    assert sum(samples["corrupted"]) == record.noise["n_corrupted"]
    if recipe.refurbisher is not None:
        assert samples["refurbished"] == samples["flags"]


@pytest.mark.parametrize("method", bench.methods.names())
def test_recipe_is_deterministic(method, records):
    first, second = records(method), records(method, run=1)
    assert first.metrics == second.metrics
    assert first.per_sample == second.per_sample
