"""Speed of the noise generators: 2,000 labels of 256 x 256 at level 1.0, every type.

Run with `.venv/bin/python -m pytest benchmarks -q`, pinned to one core (the
test pins itself where the OS allows). The labels are the echo phantom's
(6 patients x 4 frames at 256 px, tiled to 2,000 with distinct ids and complete
ED/ES pairs), so crops, repairs and Dice see realistic anatomy. For each spec
it prints wall and CPU seconds for the whole `apply_noise` call (selection,
corruption, validity repair, changed mask, per-sample Dice) and the mean label
Dice. The target, under 5 s on one core for every type with its defaults, is
printed, not asserted: shared machines are noisy. `random` in Markov mode is
measured too and is known to be slower.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

import bench
from bench.noise import apply_noise

N_LABELS, SIZE, TARGET_S = 2000, 256, 5.0
SPECS = ["systematic:1", "random:1", "omission:1", "shift:1", "coarse:1", "temporal:1", "random:1,mode=markov"]


@pytest.fixture(scope="module")
def labels_2000():
    pinned = hasattr(os, "sched_setaffinity")
    if pinned:
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
    data = bench.load_dataset("echo-phantom", size=SIZE, patients=6, splits=(4, 1, 1))
    reps = -(-N_LABELS // len(data))
    labels = np.concatenate([data.labels] * reps)[:N_LABELS]
    spacing = np.concatenate([data.spacing] * reps)[:N_LABELS]
    info = pd.concat([data.info.assign(patient=data.info["patient"] + f"r{k}") for k in range(reps)], ignore_index=True).iloc[:N_LABELS]
    info = info.assign(id=info["patient"] + "_" + info["view"] + "_" + info["phase"]).reset_index(drop=True)
    assert info["id"].is_unique and len(info) == N_LABELS and N_LABELS % 4 == 0  # whole patients: every frame has its partner
    yield labels, spacing, list(info["id"]), info
    if pinned:
        os.sched_setaffinity(0, cpus)


@pytest.mark.parametrize("spec", SPECS)
def test_noise_speed(benchmark, labels_2000, spec):
    labels, spacing, ids, info = labels_2000
    apply_noise(spec, labels[:8], spacing[:8], ids[:8], 0, info=info.iloc[:8])  # warm-up: plugin loading, imports
    cpu: list[float] = []

    def run():
        c = time.process_time()
        res = apply_noise(spec, labels, spacing, ids, 0, info=info)
        cpu.append(time.process_time() - c)
        return res

    res = benchmark.pedantic(run, rounds=1, iterations=1)
    wall = benchmark.stats.stats.mean
    assert res.corrupted.sum() == N_LABELS
    verdict = "ok" if wall < TARGET_S else "OVER TARGET"
    print(
        f"\n{spec:24s} {N_LABELS} labels {SIZE}px: {wall:6.2f} s wall, {cpu[-1]:6.2f} s CPU, "
        f"{1e3 * wall / N_LABELS:5.2f} ms/label, mean label Dice {res.mean_label_dice:.3f}  (target < {TARGET_S:g} s: {verdict})"
    )
