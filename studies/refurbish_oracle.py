"""Study: which refurbisher does no harm (issue 14, item 2). With the oracle's flags (the truly corrupted samples),
the corrupted samples' label Dice against the clean label before and after each refurbisher, per error type and level.

One baseline training per (noise, seed) on the noisy labels; at each evaluation epoch every candidate refurbishes the
truly corrupted samples from the same model, so the candidates differ only in what they do with it:

- `pseudo-label`: the v1 refurbisher (cleaned argmax, whole label replaced);
- `gated@T`: pixels change only where another class's probability > T (`methods/gated.py`), teacher = current model;
- `gated@0.9+temporal`: the same, teacher = mean softmax of the last 3 epochs; `+flip`: mirrored-prediction averaging.

    python studies/refurbish_oracle.py phantom-quick --noise systematic:0.75 random:0.75 omission:0.75 --epochs 6 9

Prints per (noise, epoch, candidate): label Dice before -> after, mean over seeds, and the per-seed gains. CPU, 1 thread.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

import bench
from bench.labelmaps import label_dice
from bench.noise import apply_noise
from bench.plugins import plugin_module
from bench.training import fit
from bench.trial import initial_trial, protocol_data, seed_everything

GATED = plugin_module("methods", "gated")
CANDIDATES = ("pseudo-label", "gated@0.8", "gated@0.9", "gated@0.95", "gated@0.9+flip", "gated@0.9+temporal", "gated@0.9+temporal+flip")


class _Study(bench.Detector):
    """At each evaluation epoch, every candidate's refurbished labels for the corrupted samples (a study tool)."""

    def __init__(self, corrupted: list[int], epochs: list[int]) -> None:
        super().__init__()
        self.index = torch.tensor(corrupted, dtype=torch.int64)
        self.epochs = epochs
        self.recent: dict[bool, list[torch.Tensor]] = {False: [], True: []}  # flip -> the last 3 epochs' probabilities
        self.out: dict[tuple[int, str], np.ndarray] = {}
        self.pseudo = bench.refurbishers.get("pseudo-label")()

    def on_epoch_end(self, trial: bench.Trial) -> None:
        if trial.epoch < min(self.epochs) - 2:
            return
        images = trial.images[self.index]
        plain = trial.predict(images)
        flipped = (plain + trial.predict(images.flip(-1)).flip(-1)) / 2
        for flip, probs in ((False, plain), (True, flipped)):
            self.recent[flip] = [*self.recent[flip], probs][-3:]
        if trial.epoch not in self.epochs:
            return
        flags = np.zeros(trial.n, dtype=bool)
        flags[self.index.numpy()] = True
        self.out[trial.epoch, "pseudo-label"] = self.pseudo.refurbish(trial, flags).labels.numpy()
        current = trial.label_tensor(self.index)
        old = current.numpy().astype(np.uint8)
        for name in CANDIDATES[1:]:
            head, *extras = name.split("+")
            threshold = float(head.split("@")[1])
            flip = "flip" in extras
            probs = torch.stack(self.recent[flip]).mean(0) if "temporal" in extras else self.recent[flip][-1]
            gated = GATED.gate(current, probs, threshold).numpy().astype(np.uint8)
            self.out[trial.epoch, name] = np.stack([bench.make_valid(o, g) for o, g in zip(old, gated, strict=True)])

    def score(self, trial: bench.Trial) -> bench.Scores:
        return bench.Scores(np.zeros(trial.n))


def run(protocol_name: str, noise: str, seed: int, epochs: list[int]) -> dict[tuple[int, str], tuple[float, float]]:
    protocol = bench.protocols.get(protocol_name)
    protocol = bench.Protocol(**{**protocol.__dict__, "epochs": max(epochs)})  # train only as far as the last evaluation
    seed_everything(seed)
    train = protocol_data(protocol)["train"]
    noisy = apply_noise(noise, train.labels, train.spacing, train.ids, seed, info=train.info)
    params = {"corrupted": np.flatnonzero(noisy.corrupted).tolist(), "epochs": epochs}
    recipe = bench.Recipe(
        name="refurbish-study", description="study only", detector="refurbish-study", detect_at=1.0, detector_params=params
    )
    study: _Study = fit(initial_trial(protocol, seed, train, noisy, recipe), recipe).detector
    idx = np.flatnonzero(noisy.corrupted)
    before = float(label_dice(train.labels[idx], noisy.labels[idx]).mean())
    return {key: (before, float(label_dice(train.labels[idx], new.astype(np.uint8)).mean())) for key, new in study.out.items()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol")
    parser.add_argument("--noise", nargs="+", required=True)
    parser.add_argument("--epochs", nargs="+", type=int, default=[6, 9])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    bench.detectors.register("refurbish-study", _Study)
    for noise in args.noise:
        per_seed = [run(args.protocol, noise, s, args.epochs) for s in args.seeds]
        for epoch in args.epochs:
            for name in CANDIDATES:
                pairs = [r[epoch, name] for r in per_seed]
                before, after = np.mean([b for b, _ in pairs]), np.mean([a for _, a in pairs])
                gains = [round(a - b, 3) for b, a in pairs]
                print(f"{args.protocol} {noise} epoch {epoch} {name:24s} label Dice {before:.3f} -> {after:.3f}  gains {gains}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
