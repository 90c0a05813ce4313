"""Intervals, tests and power for results over a few seeds: the textbook methods, whose
coverage holds from two seeds up (tests/test_report_stats.py checks it by simulation).

- a group's mean: the t-interval ``mean ± t(n-1) · s / √n``;
- the difference of two groups' means: Welch's interval and test (unequal variances,
  Welch-Satterthwaite degrees of freedom), or, where both groups hold the same seeds and
  pairing is asked for, the paired t-interval of the per-seed differences;
- several groups against one baseline: Holm's step-down adjustment of the p-values
  (the family-wise error rate stays at 5%);
- how many seeds per group a two-sided two-sample t-test at 5% needs to resolve a
  difference of a given size with 80% power (the noncentral t distribution).

One value has no interval, and neither have values that all agree (a zero-width interval
would claim a certainty that two seeds cannot give): both are NaN, never a fake interval.
Every function drops non-finite values first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
ALPHA = 0.05  # the tests' significance level, two-sided: 1 - LEVEL
POWER = 0.8
MAX_SEEDS = 10_000  # seeds_needed gives up above this


def finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def t_quantile(df, level: float = LEVEL) -> np.ndarray:
    """Student's t quantile for a two-sided ``level`` interval, elementwise over ``df``
    (NaN where df is below 1 or not finite)."""
    from scipy.special import stdtrit

    df = np.asarray(df, dtype=float)
    out = np.full(df.shape, np.nan)
    ok = np.isfinite(df) & (df >= 1)
    out[ok] = stdtrit(df[ok], (1 + level) / 2)
    return out


def _two_sided_p(t: float, df: float) -> float:
    from scipy.special import stdtr

    return float(2 * stdtr(df, -abs(t)))


def mean_ci(values, level: float = LEVEL) -> tuple[float, float, float, float, int]:
    """(mean, std, ci_low, ci_high, n) of the finite values: the t-interval of the mean;
    std is the sample standard deviation (n-1). NaN where there are too few values, and an
    interval of NaN where every value is the same."""
    x = finite(values)
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, np.nan, np.nan, np.nan, n
    std = float(x.std(ddof=1))
    if std == 0:
        return mean, std, np.nan, np.nan, n
    half = float(t_quantile(n - 1, level)) * std / np.sqrt(n)
    return mean, std, mean - half, mean + half, n


@dataclass(frozen=True)
class Difference:
    """``values`` minus ``baseline``: the difference of the means and its interval and test."""
    diff: float
    lo: float = np.nan
    hi: float = np.nan
    p: float = np.nan
    df: float = np.nan
    method: str = ""  # "Welch" or "paired"; "" when there is no interval

    @property
    def known(self) -> bool:
        return bool(np.isfinite(self.lo) and np.isfinite(self.hi))

    @property
    def excludes_zero(self) -> bool:
        return self.known and (self.lo > 0 or self.hi < 0)


def welch(values, baseline, level: float = LEVEL) -> Difference:
    """Welch's interval and two-sided test of mean(values) - mean(baseline)."""
    x, y = finite(values), finite(baseline)
    if len(x) == 0 or len(y) == 0:
        return Difference(np.nan)
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return Difference(diff)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se2 = vx + vy
    if se2 == 0:
        return Difference(diff)
    df = se2**2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = float(t_quantile(df, level)) * np.sqrt(se2)
    return Difference(diff, diff - half, diff + half, _two_sided_p(diff / np.sqrt(se2), df), float(df), "Welch")


def paired(values, baseline, level: float = LEVEL) -> Difference:
    """The paired t-interval and test of the mean per-seed difference; ``values[i]`` and
    ``baseline[i]`` are the same seed's results."""
    x, y = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    d = finite(x - y)
    if len(d) == 0:
        return Difference(np.nan)
    mean = float(d.mean())
    if len(d) < 2 or d.std(ddof=1) == 0:
        return Difference(mean)
    se = d.std(ddof=1) / np.sqrt(len(d))
    df = len(d) - 1
    half = float(t_quantile(df, level)) * se
    return Difference(mean, mean - half, mean + half, _two_sided_p(mean / se, df), float(df), "paired")


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted as a test)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def pooled_std(values, baseline) -> float:
    """The pooled standard deviation of two groups (NaN with fewer than 3 values in all)."""
    x, y = finite(values), finite(baseline)
    dof = len(x) + len(y) - 2
    if dof < 1 or len(x) < 1 or len(y) < 1:
        return np.nan
    ss = ((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum()
    return float(np.sqrt(ss / dof))


def power(n: int, effect: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided two-sample t-test with ``n`` seeds per group when the true
    difference is ``effect`` standard deviations."""
    from scipy.stats import nct

    df = 2 * n - 2
    crit = float(t_quantile(df, 1 - alpha))
    nc = effect * np.sqrt(n / 2)
    return float(nct.sf(crit, df, nc) + nct.cdf(-crit, df, nc))


def seeds_needed(diff: float, std: float, alpha: float = ALPHA, target: float = POWER) -> float:
    """The fewest seeds per group with which a two-sided two-sample t-test at ``alpha``
    resolves a true difference ``diff`` (groups of standard deviation ``std``) with
    probability ``target``: NaN when it cannot be said (no spread, no difference), inf
    above MAX_SEEDS."""
    if not (np.isfinite(diff) and np.isfinite(std)) or std <= 0 or diff == 0:
        return np.nan
    effect = abs(diff) / std
    lo, hi = 2, 2
    while power(hi, effect, alpha) < target:  # doubling, then bisection: about 30 evaluations
        lo, hi = hi, hi * 2
        if hi > MAX_SEEDS:
            return np.inf
    while lo < hi:
        mid = (lo + hi) // 2
        if power(mid, effect, alpha) >= target:
            hi = mid
        else:
            lo = mid + 1
    return float(hi)
