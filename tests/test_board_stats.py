"""The board's statistics against hand computation: Holm's step-down on a few p-values, the paired MDD from t-table values, references.

Closed forms used as independent truth: Student's t with 1 degree of freedom is Cauchy
(quantile tan(pi (p - 1/2))), with 2 degrees of freedom its CDF is 1/2 + t / (2 sqrt(2 + t^2)),
so its 0.80 quantile solves t^2 = 0.36 (2 + t^2): t = sqrt(1.125). scipy's noncentral t is the
reference for the exact power at the MDD.
"""

import math

import pytest
from scipy import stats

import bench
from bench import board_stats
from bench.board_stats import holm, is_reference, min_detectable_difference, pooled_sd, seeds_for_difference

T_975_1 = math.tan(0.475 * math.pi)  # 12.7062...
T_80_1 = math.tan(0.30 * math.pi)  # 1.37638...
T_975_2 = 4.302652729911275  # tables
T_80_2 = math.sqrt(1.125)  # 1.06066...


def test_holm_sorts_compares_with_alpha_over_m_minus_k_plus_one_and_stops_at_the_first_failure():
    # sorted: 0.005 <= 0.05/4 yes; 0.01 <= 0.05/3 yes; 0.03 <= 0.05/2 no -> stop (0.04 <= 0.05 is never reached)
    adjusted, reject = holm([0.01, 0.04, 0.03, 0.005])
    assert reject == [True, False, False, True]
    # adjusted: running max of (m - k + 1) p_(k): 4 * 0.005, 3 * 0.01, 2 * 0.03, max(0.06, 1 * 0.04)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # the stop matters: 0.04 would pass its own threshold 0.05 / 1, but 0.03 failed 0.05 / 2 first
    assert holm([0.03, 0.04]) == (pytest.approx([0.06, 0.06]), [False, False])


def test_holm_leaves_missing_p_values_out_of_the_count_and_caps_at_one():
    adjusted, reject = holm([math.nan, 0.02, 0.04])  # m = 2: 2 * 0.02 = 0.04, then max(0.04, 0.04)
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.04, 0.04])
    assert reject == [False, True, True]
    assert holm([0.6, 0.9]) == ([1.0, 1.0], [False, False])
    assert holm([]) == ([], [])


def test_minimum_detectable_difference_is_the_t_table_formula():
    # MDD = (t_{0.975, n-1} + t_{0.80, n-1}) * s / sqrt(n)
    assert min_detectable_difference(0.01, 3) == pytest.approx((T_975_2 + T_80_2) * 0.01 / math.sqrt(3), rel=1e-9)
    assert min_detectable_difference(0.02, 2) == pytest.approx((T_975_1 + T_80_1) * 0.02 / math.sqrt(2), rel=1e-9)
    assert min_detectable_difference(0.0, 4) == 0.0
    assert math.isnan(min_detectable_difference(0.01, 1)) and math.isnan(min_detectable_difference(math.nan, 5))


@pytest.mark.parametrize(("n", "low"), [(3, 0.75), (5, 0.78), (10, 0.795), (30, 0.798)])
def test_the_exact_power_at_the_mdd_is_about_eighty_percent(n, low):
    """scipy's noncentral t as the reference: power of the two-sided paired t-test at the MDD (the approximation's accuracy)."""
    sd = 0.02
    delta = min_detectable_difference(sd, n)
    crit, nc = stats.t.ppf(0.975, n - 1), delta * math.sqrt(n) / sd
    power = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    assert low <= power <= 0.81


def test_seeds_for_the_target_are_the_fewest_that_reach_it():
    sd = 0.01
    n = int(seeds_for_difference(sd, target=0.01))
    # large-sample check: (1.96 + 0.84)^2 = 7.8, and the t quantiles of few dof push it up a little
    assert 8 <= n <= 11
    factor = lambda k: (stats.t.ppf(0.975, k - 1) + stats.t.ppf(0.8, k - 1)) / math.sqrt(k)  # noqa: E731
    assert factor(n) * sd <= 0.01 < factor(n - 1) * sd
    assert seeds_for_difference(0.0) == 2
    assert math.isnan(seeds_for_difference(1.0)) and math.isnan(seeds_for_difference(math.nan))  # beyond MAX_SEEDS
    assert board_stats.MDD_TARGET == 0.01


def test_pooled_sd_weights_variances_by_their_degrees_of_freedom():
    sd, dof = pooled_sd([0.1, 0.2, 0.5], [3, 5, 1])  # the single-seed group has no spread to pool
    assert dof == 6 and sd == pytest.approx(math.sqrt((2 * 0.01 + 4 * 0.04) / 6))
    assert pooled_sd([0.1], [1]) == (pytest.approx(math.nan, nan_ok=True), 0)


def test_references_come_from_the_record_then_the_registry_then_the_name():
    assert is_reference({"name": "loss-refurb", "reference": True}) is True  # the record's own word wins
    assert is_reference({"name": "oracle-refurb", "reference": False}) is False
    assert is_reference({"name": "oracle-refurb"}) is True  # older records: the registered recipe's property
    assert is_reference({"name": "loss-refurb"}) is False
    assert bench.methods.get("oracle-restore").reference and is_reference({"name": "oracle-restore"})
    assert is_reference({"name": "oracle-from-a-plugin"}) is True  # not registered: the name prefix
    assert is_reference({"name": "someone-elses-method"}) is False
