"""Study: VOG's detection AUROC by training-stage window and gradient region (issue 14, item 4).

One baseline training per (protocol, noise, seed) on the noisy labels; after every epoch the
study takes the input-gradient maps of the given-label logits for every training sample, once
summed over all pixels and once over the boundary band (3 mm), with `bench`'s own VOG code
(`VOGDetector.gradient_maps`). Afterwards VOG is computed for each window of K = 3 epochs over
the whole training (early 1-3, middle, late E-2..E) and the v1 schedule (spread), signed as the
detector signs it (early -1), z-scored per view and phase, and scored against the noise truth.

    python studies/vog_stage.py small systematic:0.5 omission:0.5 --seeds 0 1 2

Prints one line per (noise, window, region): AUROC mean and per seed. CPU, one thread.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

import bench
from bench.metrics import auroc
from bench.noise import apply_noise
from bench.plugins import plugin_module
from bench.training import fit
from bench.trial import initial_trial, protocol_data, seed_everything

VOG = plugin_module("methods", "vog")
WINDOWS = ("early", "middle", "late", "spread")
REGIONS = ("all", "band")


class _Recorder(bench.Detector):
    """Keeps every epoch's gradient maps of both regions (a study tool, never registered as a method)."""

    def __init__(self) -> None:
        super().__init__()
        self.maps: dict[str, list[torch.Tensor]] = {r: [] for r in REGIONS}
        self.vog = {r: VOG.VOGDetector(region=r) for r in REGIONS}

    def on_epoch_end(self, trial: bench.Trial) -> None:
        for region, det in self.vog.items():
            self.maps[region].append(det.gradient_maps(trial))

    def score(self, trial: bench.Trial) -> bench.Scores:
        return bench.Scores(np.zeros(trial.n))


def run(protocol_name: str, noise: str, seed: int) -> dict[tuple[str, str], float]:
    protocol = bench.protocols.get(protocol_name)
    seed_everything(seed)
    train = protocol_data(protocol)["train"]
    noisy = apply_noise(noise, train.labels, train.spacing, train.ids, seed, info=train.info)
    recipe = bench.Recipe(name="vog-stage-study", description="study only", detector="vog-stage-study", detect_at=1.0)
    result = fit(initial_trial(protocol, seed, train, noisy, recipe), recipe)
    recorder: _Recorder = result.detector
    groups = train.info[["view", "phase"]].astype(str).agg("/".join, axis=1).to_numpy()
    epochs = protocol.epochs
    out = {}
    for region in REGIONS:
        stack = torch.stack(recorder.maps[region])  # (E, N, H, W)
        for window in WINDOWS:
            chosen = [e - 1 for e in VOG.window_epochs(window, 3, epochs)]
            raw = torch.sqrt(stack[chosen].var(0, unbiased=False)).flatten(1).mean(1).double().numpy()
            score = VOG.group_normalise(VOG.WINDOW_SIGN[window] * raw, groups, "group")
            out[window, region] = auroc(score, noisy.corrupted)
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol")
    parser.add_argument("noise", nargs="+")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    bench.detectors.register("vog-stage-study", _Recorder)
    for noise in args.noise:
        per_seed = [run(args.protocol, noise, s) for s in args.seeds]
        for window in WINDOWS:
            for region in REGIONS:
                values = [r[window, region] for r in per_seed]
                print(f"{args.protocol} {noise} {window:6s} {region:4s} AUROC {np.mean(values):.3f}  seeds {[round(v, 3) for v in values]}",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
