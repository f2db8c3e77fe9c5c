"""The shared flag rule against synthetic scores whose truth is known: nothing on one population, the Bayes rule's
precision on two, only ever the high side.

N = 240 scores per draw (the phantom-quick training set), fixed seeds. The Bayes rule (the posterior with the TRUE
densities and prevalence) bounds what any rule can reach: for two unit Gaussians 3 sd apart at 10% prevalence it
gives precision 0.87 and recall 0.78, so 0.9 / 0.9 there is out of reach of every rule; see the note in each test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import bench
from bench.flagging import SEPARATED, flag_by_rule, high_population_flags

N = 240
DRAWS = 40


def null_scores(kind: str, rng: np.random.Generator) -> np.ndarray:
    """Scores of ONE population: the rule must (almost) never flag."""
    return {
        "normal": lambda: rng.normal(size=N),
        "uniform": lambda: rng.uniform(size=N),
        "t3": lambda: rng.standard_t(3, size=N),
        "ties40": lambda: np.maximum(0.0, rng.normal(stats.norm.ppf(0.6), 1.0, size=N)),  # 40% tied at 0
        "exponential": lambda: rng.exponential(size=N),
        "lognormal": lambda: rng.lognormal(0.0, 0.5, size=N),
    }[kind]()


@pytest.mark.parametrize("rule", ["populations", "populations-v2"])
@pytest.mark.parametrize("kind", ["normal", "uniform", "t3", "ties40", "exponential", "lognormal"])
def test_one_population_is_almost_never_flagged(kind, rule):
    fractions = [flag_by_rule(rule, null_scores(kind, np.random.default_rng(seed))).mean() for seed in range(DRAWS)]
    assert np.mean(fractions) <= 0.05, (kind, np.mean(fractions), max(fractions))
    if kind == "ties40":
        ties = np.maximum(0.0, np.random.default_rng(0).normal(stats.norm.ppf(0.6), 1.0, size=N))
        assert (ties == 0).mean() == pytest.approx(0.4, abs=0.07)  # the case is what it says


def two_populations(separation: float, prevalence: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    truth = np.zeros(N, dtype=bool)
    truth[: round(prevalence * N)] = True
    return rng.normal(size=N) + separation * truth, truth


def bayes(separation: float, prevalence: float) -> tuple[float, float]:
    """Precision and recall of the posterior > 1/2 rule with the true densities (the best any rule can do)."""
    t = (separation**2 / 2 + math.log((1 - prevalence) / prevalence)) / separation
    recall = stats.norm.sf(t - separation)
    false = (1 - prevalence) * stats.norm.sf(t)
    return prevalence * recall / (prevalence * recall + false), recall


def measured(separation: float, prevalence: float) -> tuple[float, float, float]:
    """(share of draws that flag, mean precision over those, mean recall over all draws)."""
    precisions, recalls = [], []
    for seed in range(DRAWS):
        scores, truth = two_populations(separation, prevalence, seed)
        flags = high_population_flags(scores).flags
        if flags.any():
            precisions.append((flags & truth).sum() / flags.sum())
        recalls.append((flags & truth).sum() / truth.sum())
    return len(precisions) / DRAWS, float(np.mean(precisions)), float(np.mean(recalls))


@pytest.mark.parametrize("prevalence", [0.1, 0.25, 0.5, 0.75])
def test_two_well_separated_populations_are_found(prevalence):
    """5 sd apart: precision and recall at least 0.95 at every prevalence."""
    share, precision, recall = measured(5.0, prevalence)
    assert share == 1.0 and precision >= 0.95 and recall >= 0.95, (share, precision, recall)


@pytest.mark.parametrize(
    ("separation", "prevalence", "min_share"),
    [(3.0, 0.1, 0.6), (3.0, 0.25, 0.85), (3.0, 0.5, 0.9), (3.0, 0.75, 0.9), (4.0, 0.1, 0.9), (4.0, 0.25, 0.95)],
)
def test_when_it_flags_its_precision_is_the_bayes_rules(separation, prevalence, min_share):
    """3 and 4 sd apart the evidence for a second population in 240 scores is not always there (BIC, separation):
    measured, the rule flags in 76% (3 sd, 10%) to 100% of draws; when it flags, its precision is within 0.03 of the
    Bayes rule's (measured 0.89-0.96 at 3 sd against Bayes 0.87-0.96)."""
    share, precision, recall = measured(separation, prevalence)
    best_precision, best_recall = bayes(separation, prevalence)
    assert share >= min_share, share
    assert precision >= best_precision - 0.03, (precision, best_precision)
    assert recall <= best_recall + 0.05  # no rule beats the Bayes rule by much: the check is honest


def test_the_one_population_fits_that_need_the_tails_test_stay_below_separated():
    """The rule "populations-v2" skips the tails test from Ashman's D = SEPARATED on: the one-population shapes that test catches
    (flat, tied at the edge) must fit two Gaussians closer than that, or v2 would flag them."""
    for kind in ("uniform", "ties40", "exponential"):
        fits = [high_population_flags(null_scores(kind, np.random.default_rng(seed))) for seed in range(200)]
        assert max(f.separation for f in fits if f.bic_gain > 0) < SEPARATED, kind
    assert math.sqrt(2) * 0.5 / math.sqrt(2 / 48) < SEPARATED  # uniform(0, 1) split in halves: means 1/4, 3/4, var 1/48


def floored_and_far(prevalence: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training losses as a well-trained model leaves them: the clean samples piled up at the floor (exponential, skewed
    right), the corrupted ones far above (normal, 8 clean-sds up); two populations no one could miss."""
    rng = np.random.default_rng(2000 + seed)
    truth = np.zeros(N, dtype=bool)
    truth[: round(prevalence * N)] = True
    return np.where(truth, rng.normal(8.0, 1.0, N), rng.exponential(1.0, N)), truth


@pytest.mark.parametrize("prevalence", [0.25, 0.5, 0.75])
def test_a_population_piled_at_its_floor_does_not_hide_the_second_one(prevalence):
    """The rule "populations" asked such a fit for Gaussian tails and flagged nothing (as on the phantom-quick v3 board at
    omission 0.25 and 0.5, AUROC 1.00); "populations-v2" finds the far population (measured: every draw, precision
    0.92-0.99, recall 1.00)."""
    old, new, precisions, recalls = 0, 0, [], []
    for seed in range(DRAWS):
        scores, truth = floored_and_far(prevalence, seed)
        old += flag_by_rule("populations", scores).any()
        flags = flag_by_rule("populations-v2", scores)
        new += flags.any()
        if flags.any():
            precisions.append((flags & truth).sum() / flags.sum())
        recalls.append((flags & truth).sum() / truth.sum())
    assert old <= 0.1 * DRAWS  # the failure v2 fixes is real
    assert new >= 0.95 * DRAWS and np.mean(precisions) >= 0.9 and np.mean(recalls) >= 0.95, (new, np.mean(precisions))


def test_only_the_high_side_is_flagged_and_flags_are_an_upper_set():
    # a broad high component and a narrow low one: a plain posterior comparison would also flag the lowest scores
    rng = np.random.default_rng(7)
    scores = np.concatenate([rng.normal(0.0, 0.3, 180), rng.normal(4.0, 2.0, 60)])
    result = high_population_flags(scores)
    assert result.reason == "flagged" and result.flags.any()
    assert not result.flags[scores < np.median(scores)].any()
    order = np.argsort(scores)
    assert np.all(np.diff(result.flags[order].astype(int)) >= 0)  # once flagged, every higher score is flagged
    np.testing.assert_array_equal(result.flags, scores >= result.threshold)


def test_deterministic_and_order_free():
    scores, _ = two_populations(4.0, 0.3, 3)
    first = high_population_flags(scores)
    assert np.array_equal(first.flags, high_population_flags(scores.copy()).flags)
    perm = np.random.default_rng(0).permutation(N)
    np.testing.assert_array_equal(high_population_flags(scores[perm]).flags, first.flags[perm])


def test_degenerate_and_broken_input():
    assert not high_population_flags(np.full(50, 0.3)).flags.any()
    assert not high_population_flags(np.array([0.0, 1.0, 5.0])).flags.any()  # too few to speak of populations
    assert high_population_flags(np.zeros(0)).flags.shape == (0,)
    with pytest.raises(ValueError, match="finite"):
        high_population_flags(np.array([0.0, np.nan, 1.0] * 5))


def test_it_is_public_api():
    assert bench.high_population_flags is high_population_flags
