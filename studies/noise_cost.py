"""Study: what each noise spec costs the baseline under candidate protocol settings (issue 16, item 1).

Runs `baseline` on a protocol with settings overridden as in `studies/training_curve.py`, for
each noise spec and seed, and prints the test Dice per structure and the mean, the paired
difference to the clean run of the same seed (same data order, initial weights and
augmentation), and the noisy labels' own mean label Dice (how much the noise changed them).

    python studies/noise_cost.py phantom-quick image_size=80 decoder_channels=64,32,16,16,8 epochs=12 \\
        lr_schedule=poly augment=light channels_last=true --noise systematic:0.75 systematic:0.75,mm=5 --seeds 0 1 2

CPU, one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np
import torch
from training_curve import parse_override

import bench


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocol")
    parser.add_argument("overrides", nargs="*", help="field=value")
    parser.add_argument("--noise", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    protocol = bench.protocols.get(args.protocol)
    protocol = dataclasses.replace(protocol, **dict(parse_override(o, protocol) for o in args.overrides))
    clean = {s: bench.run_trial(protocol, "baseline", "none", s).metrics["dice"] for s in args.seeds}
    print(
        f"{protocol.name} with {' '.join(args.overrides) or 'no overrides'}; clean mean Dice per seed "
        + " ".join(f"{clean[s]['mean']:.3f}" for s in args.seeds),
        flush=True,
    )
    for noise in args.noise:
        rows = [bench.run_trial(protocol, "baseline", noise, s) for s in args.seeds]
        diff = np.array([r.metrics["dice"]["mean"] - clean[s]["mean"] for r, s in zip(rows, args.seeds, strict=True)])
        per = np.mean([[r.metrics["dice"][k] for k in ("lv", "myo", "la")] for r in rows], axis=0)
        print(
            f"  {noise:28s} Dice {' / '.join(f'{v:.3f}' for v in per)}  paired diff {diff.mean():+.4f} (sd {diff.std(ddof=1):.4f})"
            f"  label Dice of the noise {np.mean([r.noise['mean_label_dice'] for r in rows]):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
