"""The grid of a run (methods x noise specs x seeds) and its name checks, which need no Ray.

`bench run` plans the grid here first, so a typo is refused before anything imports Ray
(`bench.runner` imports it at the top).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import BenchError
from bench.method import check_trusted, recipe_for
from bench.noise import parse_noise
from bench.protocols import Protocol


@dataclass(frozen=True)
class TrialSpec:
    """One cell of the grid: everything a trial is a function of."""

    protocol: str
    method: str
    noise: str
    seed: int

    @property
    def label(self) -> str:
        """A short human-readable name."""
        return f"{self.method} | {self.noise} | seed {self.seed}"


def plan_grid(protocol: Protocol, method_names: list[str], noise_specs: list[str], seeds: list[int]) -> list[TrialSpec]:
    """The grid in a fixed order, after checking every name and spec (BenchError on the first bad one)."""
    if not method_names or not noise_specs or not seeds:
        raise BenchError("the grid is empty: give at least one method, one noise spec and one seed")
    for name in method_names:
        check_trusted(recipe_for(name, protocol), protocol)
    canonical = [parse_noise(s).text for s in noise_specs]
    if any(s < 0 for s in seeds):
        raise BenchError(f"seeds must be non-negative integers, got {seeds}")
    unique_methods, unique_noise, unique_seeds = dict.fromkeys(method_names), dict.fromkeys(canonical), dict.fromkeys(seeds)
    return [TrialSpec(protocol.name, m, n, s) for m in unique_methods for n in unique_noise for s in unique_seeds]
