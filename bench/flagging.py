"""Rules that turn detector scores into flags, shared by detectors.

- `high_population_flags` (the rule new recipe versions use): flags the high side
  only, and only when the scores hold a second, higher population; on scores from
  one population it flags nothing.
  "populations" (recipe generation 2) applies its Gaussian-tails test to every fit;
  "populations-v2" (generation 3) only to fits whose components are less than
  `SEPARATED` apart, since a score population piled up at its floor (losses of
  well-fitted samples) fails that test however far the second population lies
  (on the phantom-quick v3 board the loss detector's training scores at omission
  0.25 and 0.5 were two populations 6.6-10.8 apart, AUROC 1.00, and "populations"
  flagged nothing; tests/test_flagging.py has the synthetic case).
- `mixture_flags` (the rule of the recipes on the phantom-quick v1 board, kept so
  their records stay reproducible): the high component of a two-Gaussian mixture,
  always; on one population it still flags a share of samples (12-60% measured).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Ashman's D from which "populations-v2" skips the tails test. A flat (uniform) population, the one-population shape that
#: test exists for, splits into two Gaussians at most D = sqrt(48) / 2 = 3.46 apart (halves of equal width) and measured
#: at most 3.79 in 200 draws of 240 scores; the ties-at-the-edge, exponential and lognormal cases stay below 3.2.
SEPARATED = 4.0

#: EM starts (quantile pairs of the scores) tried by `high_population_flags`; the best likelihood wins
_STARTS = ((0.25, 0.75), (0.1, 0.9), (0.5, 0.95), (0.05, 0.5))


def mixture_flags(scores: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Flag samples more likely to belong to the higher of two 1-D Gaussian components.

    EM for a two-component Gaussian mixture, started from the lower and upper
    quartiles; a sample is flagged when the posterior of the high-mean component
    exceeds 0.5. Deterministic; flags nothing when all scores are equal.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        return np.zeros(x.shape, dtype=bool)
    mu = np.quantile(x, [0.25, 0.75])
    floor = 1e-6 * np.var(x) + 1e-12
    var = np.full(2, np.var(x) / 4 + floor)
    weight = np.array([0.5, 0.5])
    for _ in range(iterations):
        log_p = -0.5 * (x[:, None] - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var) + np.log(weight)
        log_p -= log_p.max(1, keepdims=True)
        resp = np.exp(log_p)
        resp /= resp.sum(1, keepdims=True)
        nk = resp.sum(0) + 1e-12
        new_mu = (resp * x[:, None]).sum(0) / nk
        var = (resp * (x[:, None] - new_mu) ** 2).sum(0) / nk + floor
        weight = nk / nk.sum()
        if np.allclose(new_mu, mu, rtol=0, atol=1e-10):
            mu = new_mu
            break
        mu = new_mu
    high = int(np.argmax(mu))
    log_p = -0.5 * (x[:, None] - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var) + np.log(weight)
    return log_p[:, high] > log_p[:, 1 - high]


@dataclass(frozen=True)
class Flagging:
    """What `high_population_flags` decided and why (every number it compared, for records and plots)."""

    flags: np.ndarray  # bool (N,)
    reason: str  # "flagged", or the first test that failed
    bic_gain: float = math.nan  # BIC(1 component) - BIC(2 components); > 0 favours two
    separation: float = math.nan  # Ashman's D of the two components
    expected_outside: float = math.nan  # samples the 2-component fit expects beyond the observed min and max
    high_weight: float = math.nan  # mixing weight of the high component
    threshold: float = math.nan  # flags = scores >= threshold


def _fit_two(
    x: np.ndarray, floor: float, start: tuple[float, float], iterations: int = 500
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """EM for a 1-D two-Gaussian mixture from the quantile pair `start`, variances floored: (log-lik, means, vars, weights, log-joint)."""
    mu = np.quantile(x, start)
    var = np.full(2, max(float(np.var(x)) / 4, floor))
    weight = np.array([0.5, 0.5])
    previous = -math.inf
    for _ in range(iterations + 1):
        log_joint = -0.5 * (x[:, None] - mu) ** 2 / var - 0.5 * np.log(2 * math.pi * var) + np.log(weight)
        top = log_joint.max(1, keepdims=True)
        log_lik = float((top[:, 0] + np.log(np.exp(log_joint - top).sum(1))).sum())
        if log_lik - previous <= 1e-10 * abs(log_lik) + 1e-12:
            break
        previous = log_lik
        resp = np.exp(log_joint - top)
        resp /= resp.sum(1, keepdims=True)
        nk = resp.sum(0) + 1e-300
        mu = (resp * x[:, None]).sum(0) / nk
        var = np.maximum((resp * (x[:, None] - mu) ** 2).sum(0) / nk, floor)
        weight = nk / nk.sum()
    return log_lik, mu, var, weight, log_joint


def high_population_flags(
    scores: np.ndarray,
    *,
    min_separation: float = 2.0,
    max_outside: float = 6.0,
    min_weight: float = 0.04,
    floor: float = 0.2,
    tails_below: float = math.inf,
) -> Flagging:
    """Flag the samples of a second, higher population of scores, and nothing when there is none.

    A second population must pass every test (each against independent truth in tests/test_flagging.py):

    1. model comparison: a two-Gaussian mixture (EM from four quantile starts, the best
       likelihood kept) has a lower BIC than one Gaussian (`bic_gain` > 0);
    2. separation: Ashman's D = sqrt(2) |mu_hi - mu_lo| / sqrt(var_hi + var_lo) > `min_separation`
       (2: a mixture of two such Gaussians has two modes); heavy tails fit as a narrow and a
       wide component on one centre fail here;
    3. tails: the mixture expects at most `max_outside` samples beyond the observed min and
       max (about 2 when the model is right); a flat (uniform) or tied-at-the-edge set of
       scores, which two Gaussians fit inside but not at its edges, fails here; applied only
       to fits with D < `tails_below` (default: every fit, the "populations" rule);
    4. size: each component holds at least `min_weight` of the samples (a few outliers are
       no population).

    Variances are floored at (`floor` x the scores' robust spread, IQR / 1.349, or their
    standard deviation when that is 0)^2, so a tie cannot collapse a component. Flags:
    scores >= the lowest score above the low component's mean whose posterior favours the
    high component; the low side is never flagged, and a higher score is never flagged
    less. Deterministic; measured on 240 synthetic scores (tests/test_flagging.py): nothing
    flagged on normal, uniform, t(3), 40%-tied and exponential scores, 0.5% on lognormal;
    for two unit Gaussians 3 sd apart, flags in 76-96% of draws (10-75% prevalence) with
    the Bayes rule's precision when it does, all four prevalences >= 0.97 at 5 sd.
    """
    x = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("scores must be finite numbers")
    n = x.size
    nothing = np.zeros(n, dtype=bool)
    if n < 8 or np.ptp(x) == 0:
        return Flagging(nothing, "too few distinct scores")
    q1, q3 = np.quantile(x, [0.25, 0.75])
    spread = (q3 - q1) / 1.349 if q3 > q1 else float(np.std(x))
    var_floor = (floor * spread) ** 2
    one_var = max(float(np.var(x)), var_floor)
    one = float(stats.norm.logpdf(x, float(np.mean(x)), math.sqrt(one_var)).sum())
    log_lik, mu, var, weight, log_joint = max((_fit_two(x, var_floor, s) for s in _STARTS), key=lambda fit: fit[0])
    lo, hi = (0, 1) if mu[0] <= mu[1] else (1, 0)
    bic_gain = (-2 * one + 2 * math.log(n)) - (-2 * log_lik + 5 * math.log(n))
    separation = math.sqrt(2) * abs(mu[hi] - mu[lo]) / math.sqrt(var[lo] + var[hi])
    sd = np.sqrt(var)
    outside = n * float((weight * (stats.norm.cdf(x.min(), mu, sd) + stats.norm.sf(x.max(), mu, sd))).sum())
    facts = {"bic_gain": bic_gain, "separation": separation, "expected_outside": outside, "high_weight": float(weight[hi])}
    for failed, reason in (
        (bic_gain <= 0, "one population fits better (BIC)"),
        (separation <= min_separation, "components not separated"),
        (outside > max_outside and separation < tails_below, "two Gaussians do not fit the tails"),
        (not min_weight <= weight[hi] <= 1 - min_weight, "a component too small to be a population"),
    ):
        if failed:
            return Flagging(nothing, reason, **facts)
    above = (log_joint[:, hi] > log_joint[:, lo]) & (x > mu[lo])
    if not above.any():
        return Flagging(nothing, "no score favours the high component", **facts)
    threshold = float(x[above].min())
    return Flagging(x >= threshold, "flagged", **facts, threshold=threshold)


#: the rules a detector's `flag_rule` parameter can name (recipe generation 1: "mixture", 2: "populations",
#: 3: "populations-v2")
FLAG_RULES = ("mixture", "populations", "populations-v2")


def check_flag_rule(rule: str, extra: tuple[str, ...] = ()) -> str:
    """`rule` if it is a shared rule (or one of the detector's own `extra` rules), else a ValueError naming the choices."""
    if rule not in (*FLAG_RULES, *extra):
        raise ValueError(f"flag_rule must be one of {', '.join(map(repr, (*FLAG_RULES, *extra)))}, not {rule!r}")
    return rule


def population_rule(rule: str, scores: np.ndarray) -> Flagging:
    """What the population rule `rule` ("populations" or "populations-v2") decides on `scores`, with every number it compared."""
    if rule not in ("populations", "populations-v2"):
        raise ValueError(f"{rule!r} is not a population rule; choose 'populations' or 'populations-v2'")
    return high_population_flags(scores, tails_below=SEPARATED if rule == "populations-v2" else math.inf)


def flag_by_rule(rule: str, scores: np.ndarray) -> np.ndarray:
    """Bool flags of `scores` by a shared rule: "mixture" (`mixture_flags`), "populations" (`high_population_flags`) or
    "populations-v2" (`high_population_flags` with the tails test only below `SEPARATED`)."""
    check_flag_rule(rule)
    if rule == "mixture":
        return mixture_flags(scores)
    return population_rule(rule, scores).flags
