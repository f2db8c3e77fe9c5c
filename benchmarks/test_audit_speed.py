"""Benchmark: `bench audit` at the issue's size (target: <= 10 minutes on this machine, one core).

240 echo-phantom images (60 patients) at 96 px, K = 3 folds, 12 epochs of phantom-quick's U-Net, detectors
loss, confident, softmin and dice, with `--inject systematic:0.5` (so the run also prints how well the ranking
finds known errors at this size). It runs once (about 5-7 min: K fold models of 160 images each). The
reference is one epoch of plain baseline training on the same 240 images, timed in the same run, so the
printed ratio (audit / one epoch) moves with the audit's code, not with how busy the machine is; an audit costs
about K x 12 x 2/3 = 24 such epochs plus predictions and outputs.
"""

import dataclasses
import json
import time

import pytest
import torch

import bench
import bench.audit
from bench.cli import main
from bench.noise import apply_noise
from bench.training import fit
from bench.trial import initial_trial, protocol_data

TARGET_S = 600


def _one_epoch_s() -> float:
    """Seconds of one baseline epoch on phantom-quick's 240 training images (the reference)."""
    proto = dataclasses.replace(bench.protocols.get(bench.audit.BASE_PROTOCOL), epochs=1)
    train = protocol_data(proto)["train"]
    trial = initial_trial(proto, 0, train, apply_noise("none", train.labels, train.spacing, train.ids, 0), bench.methods.get("baseline"))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    fit(trial, bench.methods.get("baseline"))
    return time.perf_counter() - t0


@pytest.mark.benchmark(group="audit", min_rounds=1)
def test_audit_of_240_phantom_images_at_96_px(benchmark, tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        epoch = _one_epoch_s()
        out = tmp_path / "audit"
        argv = ["audit", "echo-phantom", "--detector", "loss,confident,softmin,dice", "--inject", "systematic:0.5", "--out", str(out)]
        code = benchmark.pedantic(main, args=(argv,), rounds=1, iterations=1)
        wall = benchmark.stats.stats.min
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    summary = json.loads((out / "audit.json").read_text())
    detection = summary["inject"]["detection"]
    with capsys.disabled():
        print(
            f"\naudit of {summary['dataset']['cases']} phantom images at 96 px, K = 3, 12 epochs, 1 thread: {wall:.0f} s "
            f"(target <= {TARGET_S} s; estimate printed before it started: {summary['timings']['estimate_s']:.0f} s); "
            f"one baseline epoch on 240 images {epoch:.1f} s: ratio {wall / epoch:.1f} epochs"
        )
        for name, d in detection.items():
            print(f"  {name}: AUROC {d['auroc']:.3f}, AP {d['ap']:.3f}, precision@{d['budget']} {d['precision_at_budget']:.3f}")
