"""Study: does a failed training follow the noise draw or the training seed? (issue 16, items 2 and 4)

On the phantom-quick v2 board, strong systematic and omission noise make single seeds lose a
structure (seed 0's myocardium at systematic:0.5, seed 2's left atrium at omission:0.5) while
the others barely move; that is what keeps the paired spread, and so the minimum detectable
difference, high there. A board seed sets both the noisy labels (which samples, which error)
and the training (initial weights, data order, augmentation). This crosses the two around one
seed p: `baseline` trained with seed p on the noise of every seed k, and with every seed k on
the noise of seed p. If the failure stays in the first column it comes from the training path,
if in the second from the noise draw, if only at k = p from the two together.

    python studies/failure_source.py --protocol phantom-quick@v2 --noise systematic:0.5 --pivot 0
    python studies/failure_source.py --protocol phantom-quick@v2 --noise omission:0.5 --pivot 2

Prints, per k, the test Dice per structure of both crossings. CPU, one thread; 9 trials.
"""

from __future__ import annotations

import argparse
import sys

import torch

import bench
from bench.record import Record

STRUCTURES = ("lv", "myo", "la")


def _dice(record: Record) -> str:
    d = record.metrics["dice"]
    return " / ".join(f"{d[k]:.2f}" for k in STRUCTURES) + f" (mean {d['mean']:.3f})"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="phantom-quick")
    parser.add_argument("--method", default="baseline")
    parser.add_argument("--noise", required=True)
    parser.add_argument("--pivot", type=int, required=True, help="the seed whose training failed on the board")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    p = args.pivot

    def trial(training: int, noise: int) -> Record:
        return bench.run_trial(args.protocol, args.method, args.noise, training, noise_seed=noise)

    print(f"{args.protocol}, {args.method}, {args.noise}, pivot seed {p}; Dice LV / MYO / LA")
    print(f"\n| k | training {p}, noise k | training k, noise {p} |\n|---|---|---|")
    for k in args.seeds:
        fixed_training = trial(p, k)
        fixed_noise = fixed_training if k == p else trial(k, p)
        print(f"| {k} | {_dice(fixed_training)} | {_dice(fixed_noise)} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
