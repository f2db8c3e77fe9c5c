"""VOG's extra wall time over plain training at its default checkpoints (target: under 20%).

Run with `make benchmark`. On the small protocol's data and model (80 training
images at 64 px, batch 8) with the default protocol's 12 epochs (detection after
epoch 6, VOG checkpoints at epochs 2, 4, 6) it
runs `baseline` and `vog-discard` (discarding costs nothing, so the detection time
of that run is VOG alone), one torch thread each, and prints:

- in-run: VOG seconds / training seconds of the same run (the record's
  cost.detect_s / (cost.train_s - cost.detect_s)), the number that does not move
  with the machine's load;
- across runs: vog-discard train_s / baseline train_s - 1, for the same trial
  otherwise (noisier on a shared machine);
- vog-refurb's in-run ratio too, whose detection time adds the pseudo-labelling.

Expected: one gradient pass over the training set (no parameter gradients, batch
2 x the protocol's) costs 0.5-0.7 of a training epoch on CPU, so ~0.6 x K / E =
0.6 x 3 / 12 ~ 15% here (and ~22% with 8 epochs). Measured on an idle core:
14.4% in run, +13.4% across runs; with 8 epochs 26%.
Printed, not asserted: shared machines are noisy.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import bench

# the small protocol's data and model with the default protocol's schedule (phantom-quick: 12 epochs), since
# VOG's relative cost is ~0.6 x K / E: the target is about the schedule the board uses
SMALL = dataclasses.replace(bench.protocols.get("small"), name="small-12", epochs=bench.protocols.get("phantom-quick").epochs)
NOISE = "systematic:0.5"


@pytest.fixture
def one_thread():
    """One torch thread for every run, so the runs compete for the same resources."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def in_run_ratio(record: dict) -> float:
    """Detection seconds over pure training seconds within one record."""
    cost = record["cost"]
    return cost["detect_s"] / (cost["train_s"] - cost["detect_s"])


@pytest.mark.benchmark(group="vog", min_rounds=1)
def test_vog_overhead_over_baseline_training(benchmark, one_thread, capsys):
    bench.run_trial(SMALL, "baseline", NOISE, seed=0)  # warm-up: dataset cache, allocator, registry
    base = bench.run_trial(SMALL, "baseline", NOISE, seed=0)
    vog = benchmark.pedantic(bench.run_trial, args=(SMALL, "vog-discard", NOISE, 0), rounds=1, iterations=1)
    refurb = bench.run_trial(SMALL, "vog-refurb", NOISE, seed=0)
    across = vog["cost"]["train_s"] / base["cost"]["train_s"] - 1
    vog_s, train_only_s = vog["cost"]["detect_s"], vog["cost"]["train_s"] - vog["cost"]["detect_s"]
    with capsys.disabled():
        print(
            f"\nVOG overhead, {SMALL.epochs} epochs x {vog['dataset']['n_train']} images at {SMALL.image_size} px, 3 checkpoints, 1 thread:"
            f"\n  in run (vog-discard): VOG {vog_s:.2f} s / training {train_only_s:.2f} s"
            f" = {in_run_ratio(vog):.1%} (target < 20%)"
            f"\n  across runs: vog-discard train {vog['cost']['train_s']:.2f} s vs baseline {base['cost']['train_s']:.2f} s = {across:+.1%}"
            f"\n  vog-refurb in run (VOG + pseudo-labelling): {in_run_ratio(refurb):.1%}"
        )
    assert vog["metrics"]["detection"] is not None and base["metrics"]["detection"] is None
