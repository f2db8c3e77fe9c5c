"""The board's statistics beyond means and intervals: Holm's correction, the paired design's power, references.

A board compares every method with `baseline` at each noise spec by a paired t-test over the
seeds both ran. With several methods per spec, some p-values fall under 0.05 by chance alone,
so the board corrects them within the spec by Holm's step-down procedure (Holm 1979), which
holds the family-wise error rate at alpha without assuming independence. With few seeds a
difference can be real and still not detectable, so the board also prints the *minimum
detectable difference* (MDD) of its own design, from the measured spread of the paired
differences, and how many seeds would bring it down to a target.

MDD formula (the usual approximation for a paired t-test; Zar, *Biostatistical Analysis*,
5th ed., 2010, the paired-sample chapter, and Cohen 1988 for the idea): with n paired seeds
and s the standard deviation of the per-seed differences,

    MDD = (t_{1 - alpha/2, n - 1} + t_{power, n - 1}) * s / sqrt(n)

two-sided alpha = 0.05 and power = 0.80 on the board. It replaces the noncentral t of the
exact power calculation by a shifted central t, so it is slightly optimistic with very few
seeds: the exact power at this MDD (scipy's noncentral t) is 0.77 at n = 3, 0.79 at n = 5 and
0.80 from n = 10 on (tests/test_board_stats.py checks it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from bench.method import Recipe
    from bench.registry import Registry

#: the board's test level (two-sided) and power for the minimum detectable difference
ALPHA = 0.05
POWER = 0.80
#: the design target of issue 16: a difference in mean Dice of 0.01 should be detectable at every spec
MDD_TARGET = 0.01
#: `seeds_for_difference` gives up beyond this many seeds (NaN: the spread is too large to plan for)
MAX_SEEDS = 1000
#: a trial *lost a structure* when that structure's test Dice is below this (half overlap; the clean phantom-quick v2
#: baseline's worst structure is near 0.78). Strong noise makes some trainings lose a structure while the others barely
#: move; a mean with its interval hides that, so the board counts them. Fixed before counting any board.
LOST_BELOW = 0.5
#: the name prefix of reference recipes, the last resort when neither the record nor the registry says
REFERENCE_PREFIX = "oracle-"


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> tuple[list[float], list[bool]]:
    """Holm-adjusted p-values and rejections at `alpha`, in the order given; NaN p-values stay NaN and are not counted.

    The procedure: sort the m finite p-values, compare the k-th smallest with alpha / (m - k + 1)
    and reject until the first one that fails (then none after it). The adjusted p-value of the
    k-th smallest is max over j <= k of min(1, (m - j + 1) p_(j)), so a hypothesis is rejected
    exactly when its adjusted p-value is at most alpha.
    """
    p = np.asarray(p_values, dtype=float)
    finite = np.flatnonzero(np.isfinite(p))
    adjusted = np.full(len(p), math.nan)
    m = len(finite)
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for k, i in enumerate(order, start=1):
        running = max(running, min(1.0, (m - k + 1) * p[i]))
        adjusted[i] = running
    reject = [bool(np.isfinite(a) and a <= alpha) for a in adjusted]
    return [float(a) for a in adjusted], reject


def mdd_factor(n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """(t_{1 - alpha/2, n - 1} + t_{power, n - 1}) / sqrt(n): the MDD per unit of paired sd; NaN for n < 2."""
    if n < 2:
        return math.nan
    dof = n - 1
    return float((stats.t.ppf(1 - alpha / 2, dof) + stats.t.ppf(power, dof)) / math.sqrt(n))


def min_detectable_difference(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true mean paired difference a two-sided paired t-test on `n` seeds detects with `power` (module docstring)."""
    if not np.isfinite(sd) or n < 2:
        return math.nan
    return mdd_factor(n, alpha, power) * float(sd)


def seeds_for_difference(sd: float, target: float = MDD_TARGET, alpha: float = ALPHA, power: float = POWER) -> float:
    """The fewest seeds (>= 2) whose MDD at paired sd `sd` is at most `target`; NaN if unknown sd or more than MAX_SEEDS."""
    if not np.isfinite(sd):
        return math.nan
    for n in range(2, MAX_SEEDS + 1):
        if mdd_factor(n, alpha, power) * sd <= target:
            return float(n)
    return math.nan


def pooled_sd(sds: Sequence[float], ns: Sequence[int]) -> tuple[float, int]:
    """The pooled standard deviation sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1)) of groups with n_i >= 2, and its degrees of freedom."""
    pairs = [(float(s), int(n)) for s, n in zip(sds, ns, strict=True) if n >= 2 and np.isfinite(s)]
    dof = sum(n - 1 for _, n in pairs)
    if not dof:
        return math.nan, 0
    return math.sqrt(sum((n - 1) * s * s for s, n in pairs) / dof), dof


def lost_structure(dice: dict[str, float]) -> bool:
    """Whether a record's `metrics.dice` (per structure and `mean`) has a structure below LOST_BELOW."""
    return any(float(v) < LOST_BELOW for k, v in dice.items() if k != "mean")


def is_reference(method: dict[str, Any], registered: Registry[Recipe] | None = None) -> bool:
    """Whether a record's `method` block is a reference (a ceiling that reads the noise truth), which a board shows but never ranks.

    In order: the record's own `method.reference` (records since it exists); for older records
    the registered recipe's `reference` property (`bench.methods`); for a name the registry
    does not know, the name prefix `oracle-` (REFERENCE_PREFIX), the convention all
    references follow. `registered` is the registry to ask (default `bench.methods`).
    """
    flag = method.get("reference")
    if isinstance(flag, bool):
        return flag
    name = str(method.get("name", ""))
    if registered is None:
        from bench.method import methods as registered
    if name in registered:
        return bool(registered.get(name).reference)
    return name.startswith(REFERENCE_PREFIX)
