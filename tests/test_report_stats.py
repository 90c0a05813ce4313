"""The report's bootstrap: against a plain loop, seeded, honest about too few values."""

import numpy as np
import pytest

from normbench.report import stats


def test_the_interval_matches_a_plain_bootstrap_loop_and_is_reproducible():
    values = np.array([0.91, 0.93, 0.90, 0.95, 0.92, 0.94])
    mean, std, lo, hi, n = stats.mean_ci(values, resamples=4000, seed=3)
    assert (mean, n) == (pytest.approx(values.mean()), 6) and std == pytest.approx(values.std(ddof=1))
    rng = np.random.default_rng(99)
    loop = [rng.choice(values, size=len(values)).mean() for _ in range(4000)]
    assert lo == pytest.approx(np.percentile(loop, 2.5), abs=0.002)
    assert hi == pytest.approx(np.percentile(loop, 97.5), abs=0.002)
    assert stats.mean_ci(values, resamples=4000, seed=3) == (mean, std, lo, hi, n)
    assert stats.mean_ci(values, resamples=4000, seed=4)[2:4] != (lo, hi)


def test_too_few_values_give_no_interval_and_non_finite_values_are_left_out():
    assert np.isnan(stats.mean_ci([])[0])
    mean, std, lo, hi, n = stats.mean_ci([0.9, np.nan])
    assert (mean, n) == (0.9, 1) and np.isnan(std) and np.isnan(lo) and np.isnan(hi)
    d, lo, hi = stats.diff_ci([0.9], [0.8, 0.82])
    assert d == pytest.approx(0.09) and np.isnan(lo) and np.isnan(hi)
    assert np.isnan(stats.diff_ci([], [0.8, 0.82])[0])


def test_the_difference_interval_resamples_each_group_on_its_own():
    a = np.array([0.95, 0.96, 0.97, 0.96])
    b = np.array([0.90, 0.91, 0.92, 0.91, 0.90])
    d, lo, hi = stats.diff_ci(a, b, resamples=4000)
    assert d == pytest.approx(a.mean() - b.mean()) and 0 < lo < d < hi
    # about the spread of the independent difference: sqrt of the summed squared standard errors
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.2)
    d2, lo2, hi2 = stats.diff_ci(b, a, resamples=4000)
    assert d2 == pytest.approx(-d) and hi2 < 0


def test_t_quantile():
    assert stats.t_quantile(np.array([1, 10, 1000])) == pytest.approx([12.706, 2.228, 1.962], abs=1e-3)
    assert np.isnan(stats.t_quantile(np.array([0]))[0])
