"""Speed of the command line: `bench --help`, `bench list methods` and the name errors of `bench run`.

Run with `.venv/bin/python -m pytest benchmarks/test_cli_speed.py -q -s` (or `make benchmark`).
Each command runs as a fresh `python -m bench` process from the repository root;
for each it prints the best wall time of a few runs (peak RSS is left to `/usr/bin/time`: a
child's ru_maxrss includes the forking pytest's). `bench --help` and a bare
`python -c "import argparse"` are timed alternately in the same run, and their ratio is printed
with the targets (help within 3x of bare argparse, a name error under 3 s), printed, not
asserted: shared machines are noisy.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELP_ROUNDS, SLOW_ROUNDS = 7, 3
HELP_RATIO_TARGET, NAME_ERROR_TARGET_S = 3.0, 3.0
BENCH = [sys.executable, "-m", "bench"]
ARGPARSE = [sys.executable, "-c", "import argparse"]
SLOW = {
    "bench run --help": ["run", "--help"],
    "bench list methods": ["list", "methods"],
    "bench run --method basline": ["run", "--method", "basline"],
    "bench run --protocol nope": ["run", "--protocol", "nope"],
    "bench run --noise systemtic:0.5": ["run", "--noise", "systemtic:0.5"],
}


def measure(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, exit code) of one run of `cmd`, output discarded."""
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, code


def best(runs: list[tuple[float, int]]) -> tuple[float, int]:
    """The fastest run."""
    return min(runs)


def show(label: str, run: tuple[float, int]) -> None:
    """One line of the table."""
    wall, code = run
    print(f"{label:34s} exit {code}  {wall * 1000:8.0f} ms")


def test_cli_speed() -> None:
    bare, helps = [], []
    for _ in range(HELP_ROUNDS):  # alternated, so both see the same machine load
        bare.append(measure(ARGPARSE))
        helps.append(measure([*BENCH, "--help"]))
    print()
    show('python -c "import argparse"', best(bare))
    show("bench --help", best(helps))
    for label, argv in SLOW.items():
        run = best([measure([*BENCH, *argv]) for _ in range(SLOW_ROUNDS)])
        show(label, run)
        if run[1] == 2:
            print(f"{'':34s} target: a name error under {NAME_ERROR_TARGET_S:g} s")
    ratio = best(helps)[0] / best(bare)[0]
    print(f"bench --help / bare import argparse: {ratio:.2f}x (target: within {HELP_RATIO_TARGET:g}x)")
