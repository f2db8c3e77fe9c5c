"""Study: do board records reproduce? Reruns the trials of committed records and compares every number.

Records are meant to be bit-reproducible on one machine kind (`bench.device.cpu_kind`) and to
differ in the last digits across kinds (tests/golden_values.py). This checks it on real board
records rather than on `tiny`: each record's trial (protocol hash, recipe, noise spec, seed) is
rerun in this process with the record's torch thread count, and its `metrics` and `per_sample`
are compared value by value. Run it with the board's own code first on the path, from the
board's worktree at the records' commit (it refuses another commit, and a changed protocol hash):

    PYTHONPATH=/work/board-v4b .venv/bin/python studies/rerun_records.py \\
        leaderboard/phantom-quick/v4/baseline/none/seed0.json

Prints one line per record: where it was made and where rerun (CPU kinds), whether every value is
identical, else how many differ and by how much mean Dice moved. CPU only; a trial of
phantom-quick v4 takes 1-3 minutes of one core.

With `--save DIR` each rerun is also written as a record under DIR (at its board path there; DIR must
not lie inside a board's folder, whose cell it would duplicate). `studies/board_findings.py --reruns DIR`
reads `baseline` reruns made on another CPU kind to pair a board's methods with a `baseline` of their own kind.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import torch

import bench
from bench.device import cpu_kind
from bench.record import Record, git_commit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from golden_values import flatten  # the golden test's {path: leaf} view of a record


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The paths whose values differ (NaN equals NaN; a path missing on one side differs)."""

    def same(x: Any, y: Any) -> bool:
        return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))

    return sorted(k for k in a.keys() | b.keys() if k not in a or k not in b or not same(a[k], b[k]))


def rerun(record: Record) -> Record:
    """The record's trial run again here, with its torch thread count."""
    threads = (record.provenance.get("device") or {}).get("torch_threads") or 1
    torch.set_num_threads(int(threads))
    protocol = bench.protocols.get(f"{record.protocol['name']}@v{record.protocol['version']}")
    if protocol.hash != record.protocol["hash"]:
        raise SystemExit(f"{record.cell.label}: protocol hash {protocol.hash} here, {record.protocol['hash']} in the record")
    return bench.run_trial(protocol, record.method["name"], record.noise["spec"], record.seed)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path, help="record JSON files")
    parser.add_argument("--save", type=Path, help="also write each rerun as a record under this folder")
    args = parser.parse_args(argv)
    here, commit = cpu_kind()[0], git_commit()  # as the records name theirs
    for path in args.records:
        record = Record.read(path)
        made = record.provenance.get("git_commit")
        if made != commit:
            raise SystemExit(f"{path}: made at commit {made}, this code is at {commit}; run from a worktree at {made}")
        if args.save and args.save.resolve().is_relative_to(path.resolve().parents[4]):  # the board folder: root/name/vN/method/noise
            raise SystemExit(f"{args.save} is inside the board folder of {path}; save reruns elsewhere (studies/reruns/<kind>)")
        again = rerun(record)
        if args.save:
            print(f"{path}: rerun written to {again.write(args.save)}")
        old = flatten({"metrics": record.metrics, "per_sample": record.per_sample}, "")
        new = flatten({"metrics": again.metrics, "per_sample": again.per_sample}, "")
        moved = differences(old, new)
        kinds = f"made on {(record.provenance.get('device') or {}).get('cpu') or 'unrecorded'}, rerun on {here}"
        if not moved:
            print(f"{path}: {kinds}: all {len(old)} values identical")
        else:
            delta = again.metrics["dice"]["mean"] - record.metrics["dice"]["mean"]
            print(f"{path}: {kinds}: {len(moved)} of {len(old)} values differ; mean Dice {delta:+.5f}")


if __name__ == "__main__":
    main(sys.argv[1:])
