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
from bench.training import fit, per_sample_loss
from bench.trial import initial_trial, protocol_data

PROTOCOL = dataclasses.replace(
    bench.protocols.get("tiny"),
    name="throughput",
    image_size=64,
    train_patients=16,
    epochs=3,
    dataset_options={"patients": 20, "splits": (16, 2, 2)},
)


BASELINE = bench.methods.get("baseline")


def _trial() -> bench.Trial:
    """The clean-label starting point of a trial, built the way `bench run` builds it."""
    train = protocol_data(PROTOCOL)["train"]
    torch.manual_seed(0)
    return initial_trial(PROTOCOL, 0, train, apply_noise(parse_noise("none"), train.labels, train.spacing, train.ids, 0), BASELINE)


def _harness() -> float:
    trial = _trial()
    t0 = time.perf_counter()
    fit(trial, BASELINE)
    return time.perf_counter() - t0


def _bare() -> float:
    trial = _trial()
    model = bench.build_model(PROTOCOL)  # the same model construction as the standard trainer's
    opt = torch.optim.Adam(model.parameters(), lr=PROTOCOL.lr, weight_decay=PROTOCOL.weight_decay)
    labels = trial.label_tensor()
    generator = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(PROTOCOL.epochs):
        for index in torch.randperm(trial.n, generator=generator).split(PROTOCOL.batch_size):
            model.train()
            loss = per_sample_loss(model(trial.images[index]), labels[index], PROTOCOL.dice_weight).mean()
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
