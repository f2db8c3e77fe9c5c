"""Study: each recipe's compute work on a protocol, in multiply-accumulates, against `baseline`'s.

The board's cost ratios divide CPU seconds, which count the load beside a trial as well as its work: on the v4 board
`baseline`'s records were made first, under other load, and its ratios read about a fifth low (leaderboard/README.md).
Records made before `bench.work` existed carry no MACs, so this reruns one trial per recipe (one seed, one noise spec) and
prints the MACs it counted, forward and backward, each recipe's over `baseline`'s, and its CPU seconds over `baseline`'s
from the same run (same machine and load) beside them. A recipe's work hardly depends on the seed; it can depend on the
noise through what its detector flags (a refurbisher predicts the samples it acts on), so take a spec where the detectors
flag (omission:0.75 on v4).

    python studies/work_per_recipe.py --protocol phantom-quick@v4 --noise omission:0.75 --seed 0 > work.md

CPU, one thread. References (which read the noise truth) are included; recipes that need trusted samples run only on a
protocol that has them.
"""

from __future__ import annotations

import argparse
import sys

import torch

import bench
from bench.leaderboard import BASELINE


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="phantom-quick@v4")
    parser.add_argument("--noise", default="omission:0.75")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=None, help="default: every recipe the protocol can run")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    protocol = bench.protocols.get(args.protocol)
    names = args.methods or [m for m in bench.methods.names() if protocol.trusted_patients or not bench.methods.get(m).needs_trusted]
    names = [BASELINE, *(m for m in names if m != BASELINE)]
    rows = {}
    for name in [*names, BASELINE]:  # baseline again last: its CPU seconds without the first trial's warm-up (data, imports)
        record = bench.run_trial(protocol, name, args.noise, args.seed)
        work = (record.cost["forward_macs"], record.cost["backward_macs"])
        if name in rows and work != rows[name][:2]:
            raise SystemExit(f"baseline counted {rows[name][:2]} MACs, then {work}: the count is not deterministic")
        rows[name] = (*work, record.cost["cpu_s"], record.metrics["dice"]["mean"])
        print(f"# {name}: {sum(work) / 1e9:.1f} GMAC, {record.cost['cpu_s']:.0f} CPU s", file=sys.stderr, flush=True)
    base_work, base_cpu = sum(rows[BASELINE][:2]), rows[BASELINE][2]
    print(f"{args.protocol}, {args.noise}, seed {args.seed}: one trial per recipe, CPU, one thread (`studies/work_per_recipe.py`)\n")
    print("| recipe | forward GMAC | backward GMAC | work / baseline | CPU s / baseline (same run) | test Dice |")
    print("|---|---|---|---|---|---|")
    for name in sorted(names, key=lambda m: (sum(rows[m][:2]), m)):
        forward, backward, cpu, dice = rows[name]
        ratio = (forward + backward) / base_work
        print(f"| `{name}` | {forward / 1e9:.1f} | {backward / 1e9:.1f} | {ratio:.2f} | {cpu / base_cpu:.2f} | {dice:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
