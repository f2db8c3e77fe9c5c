"""Benchmark: the harness's training throughput against a bare PyTorch loop (target: >= 0.95 of it).

Both train the same U-Net on the same images and batches for the same epochs;
the harness adds its per-sample bookkeeping (losses and overlaps every epoch).
The ratio of the two rates, measured in the same run, is what counts.
"""

import dataclasses
import time

import torch

import bench
from bench.noise import apply_noise, parse_noise
from bench.training import StandardTrainer, TrialState, fit, per_sample_loss
from bench.trial import initial_state, protocol_data

PROTOCOL = dataclasses.replace(
    bench.protocols.get("tiny"),
    name="throughput",
    image_size=64,
    train_patients=16,
    epochs=3,
    dataset_options={"patients": 20, "splits": (16, 2, 2)},
)


def _state() -> TrialState:
    """The clean-label starting state of a trial, built the way `bench run` builds it."""
    train = protocol_data(PROTOCOL)["train"]
    torch.manual_seed(0)
    return initial_state(PROTOCOL, 0, train, apply_noise(parse_noise("none"), train.labels, train.spacing, train.ids, 0))


def _harness() -> float:
    state = _state()
    t0 = time.perf_counter()
    fit(state, bench.methods.get("baseline"))
    return time.perf_counter() - t0


def _bare() -> float:
    state = _state()
    StandardTrainer().setup(state)  # the same model construction; a fresh optimiser below
    model = state.model
    opt = torch.optim.Adam(model.parameters(), lr=PROTOCOL.lr, weight_decay=PROTOCOL.weight_decay)
    t0 = time.perf_counter()
    for _ in range(PROTOCOL.epochs):
        for index in torch.randperm(state.n, generator=state.generator).split(PROTOCOL.batch_size):
            model.train()
            loss = per_sample_loss(model(state.images[index]), state.labels[index], PROTOCOL.dice_weight).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def test_harness_throughput_ratio(benchmark):
    torch.set_num_threads(1)
    _bare()  # warm-up: first passes allocate
    bare = min(_bare() for _ in range(3))
    benchmark.pedantic(_harness, rounds=3, iterations=1)
    harness = benchmark.stats.stats.min
    ratio = bare / harness
    images = PROTOCOL.epochs * 4 * PROTOCOL.train_patients
    print(f"\nharness {images / harness:.1f} img/s, bare loop {images / bare:.1f} img/s: throughput ratio {ratio:.3f} (target >= 0.95)")
