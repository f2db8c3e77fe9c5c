"""Benchmark: phantom-quick v2 against v1 training throughput per epoch (one run, ratio printed).

Each version trains `baseline` for two epochs on its own clean training set (240 images: 96 px and the
(128, 64, 32, 16, 16) decoder for v1; 80 px, the (64, 32, 16, 16, 8) decoder, channels-last, light augmentation
and the poly schedule for v2), one torch thread, seed 0. Both are timed in the same run, alternating, so the
printed ratio (v2 images/s over v1 images/s) moves with the code, not with how busy the machine is. The v2 design
measured 1.4x from channels-last alone on this CPU (README, "Protocol versions").
"""

import dataclasses
import time

import pytest
import torch

import bench
from bench.noise import apply_noise
from bench.training import fit
from bench.trial import initial_trial, protocol_data

EPOCHS = 2
ROUNDS = 2


def _epoch_rate(name: str) -> float:
    """Training images per second of `baseline` over `EPOCHS` epochs of protocol `name` (data built beforehand)."""
    protocol = dataclasses.replace(bench.protocols.get(name), epochs=EPOCHS)
    train = protocol_data(protocol)["train"]
    recipe = bench.methods.get("baseline")
    torch.manual_seed(0)
    trial = initial_trial(protocol, 0, train, apply_noise("none", train.labels, train.spacing, train.ids, 0), recipe)
    t0 = time.perf_counter()
    fit(trial, recipe)
    return EPOCHS * trial.n / (time.perf_counter() - t0)


@pytest.mark.benchmark(group="protocol", min_rounds=1)
def test_phantom_quick_v2_epoch_throughput_against_v1(benchmark, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates: dict[str, list[float]] = {"phantom-quick@v1": [], "phantom-quick@v2": []}

        def measure() -> None:
            for _ in range(ROUNDS):
                for name in rates:
                    rates[name].append(_epoch_rate(name))

        benchmark.pedantic(measure, rounds=1, iterations=1)
    finally:
        torch.set_num_threads(threads)
    v1, v2 = (max(r) for r in rates.values())
    with capsys.disabled():
        print(f"\nphantom-quick training, 1 thread, best of {ROUNDS}: v1 {v1:.1f} img/s, v2 {v2:.1f} img/s: ratio v2 / v1 {v2 / v1:.2f}x")
    assert v1 > 0 and v2 > 0
