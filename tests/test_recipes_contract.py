"""The contract every registered recipe meets, so a method added by pull request is covered without new tests.

On the tiny protocol (tiny-trusted1 for a recipe that needs trusted samples), at every
generation at which a recipe's definition changes (generation 2 on tiny with `recipes=2`, and so on): a valid
record holding that generation's definition; with a detector,
one finite score and one flag per training sample, the flags a subset of the
samples; and the same trial twice gives the same metrics and the same scores (except
where tests/golden_values.py pins the trial, at generation 1 on tiny or generation 2 on tiny
with the v2 boards' training: that is a stronger check, across processes, and it keeps the
suite inside its time budget).
"""

import dataclasses
import math

import pytest
from golden_values import TRIALS, TRIALS_V2

import bench
from bench.method import RULE_REVISIONS
from bench.record import Record

NOISE = "systematic:0.5,mm=5"


@pytest.fixture(scope="module")
def records():
    cache = {}

    def get(method: str, generation: int, run: int = 0):
        if (method, generation, run) not in cache:
            base = "tiny-trusted1" if bench.methods.get(method).needs_trusted else "tiny"  # it needs trusted samples
            tiny = dataclasses.replace(bench.protocols.get(base), recipes=generation)
            cache[method, generation, run] = bench.run_trial(tiny, method, NOISE, seed=0)
        return cache[method, generation, run]

    return get


#: the newest generation any recipe has (its own revisions or a shared rule's, `bench.method.RULE_REVISIONS`)
TOP = max([*RULE_REVISIONS, *(g for m in bench.methods.names() for g, _ in bench.methods.get(m).revisions)])
#: each recipe at every generation at which its definition changes
CASES = [(m, g) for m in bench.methods.names() for g in sorted({bench.methods.get(m).at(k).generation for k in range(1, TOP + 1)})]


@pytest.mark.parametrize(("method", "generation"), CASES)
def test_recipe_contract(method, generation, records):
    recipe = bench.methods.get(method).at(generation)
    record = records(method, generation)
    assert Record.problems(record.to_dict()) == []
    assert record.method["name"] == method and record.method["recipe"] == recipe.describe()
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


PINNED = {*((m, 1) for m, _ in TRIALS), *((m, 2) for m in TRIALS_V2)}


@pytest.mark.parametrize(("method", "generation"), [c for c in CASES if c not in PINNED])
def test_recipe_is_deterministic(method, generation, records):
    first, second = records(method, generation), records(method, generation, run=1)
    assert first.metrics == second.metrics
    assert first.per_sample == second.per_sample
