"""Study: which recipes beat `baseline` on the small protocol, and what each costs (issue 15).

Every registered recipe that is not a reference (and needs no trusted samples) runs at recipe generation 2 on `small`
(80 training images at 64 px, 8 epochs; numbers indicative only) for each noise spec and
seed; mean test Dice is paired with `baseline`'s of the same seed (same data, noise and
initial weights), and the mean paired difference is printed with its t-interval (95%) and
the number of seeds it wins, beside the recipe's training time relative to `baseline`'s.

    python studies/baselines_small.py --noise systematic:0.75 omission:0.75 --seeds 0 1 2

`--records DIR` keeps every record (one JSON file per trial). CPU, one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import stats

import bench


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", nargs="+", default=["systematic:0.75", "omission:0.75"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=None, help="default: every recipe that is not a reference")
    parser.add_argument("--records", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    protocol = dataclasses.replace(bench.protocols.get("small"), recipes=2)
    # references read the noise truth; recipes that need trusted samples run on protocols that have them
    names = args.methods or [m for m in bench.methods.names() if not (bench.methods.get(m).reference or bench.methods.get(m).needs_trusted)]
    names = ["baseline", *(m for m in names if m != "baseline")]
    for noise in args.noise:
        dice: dict[str, list[float]] = {}
        train_s: dict[str, list[float]] = {}
        for name in names:
            for seed in args.seeds:
                record = bench.run_trial(protocol, name, noise, seed)
                if args.records is not None:
                    record.write(args.records)
                dice.setdefault(name, []).append(record.metrics["dice"]["mean"])
                train_s.setdefault(name, []).append(record.cost["train_s"])
            print(f"# {noise} {name} done", file=sys.stderr, flush=True)
        base, base_s = np.array(dice["baseline"]), np.mean(train_s["baseline"])
        print(f"small (recipe generation 2), {noise}, seeds {args.seeds}: baseline mean Dice {base.mean():.3f}")
        print(f"  {'method':20s} {'Dice':>6s} {'diff':>7s} {'95% CI':>17s} wins  cost")
        for name in names[1:]:
            diff = np.array(dice[name]) - base
            half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
            print(
                f"  {name:20s} {np.mean(dice[name]):6.3f} {diff.mean():+7.3f} [{diff.mean() - half:+.3f}, {diff.mean() + half:+.3f}]"
                f" {int((diff > 0).sum())}/{len(diff)}  {np.mean(train_s[name]) / base_s:.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
