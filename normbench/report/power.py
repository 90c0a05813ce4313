"""How many seeds a difference would need: a rough planning figure, not a result.

The power of a two-sided two-sample t-test (the noncentral t distribution) with ``n`` seeds
per group, at a significance level that accounts for the comparisons made (``alpha``: the
report passes 5% over the number of comparisons in Holm's family, Bonferroni's level,
Holm's strictest step). The figure is computed from an observed difference and spread,
which at a few seeds are themselves very uncertain (tests/test_report_stats.py measures
how much), so it is rounded to one significant digit.
"""

from __future__ import annotations

import math

import numpy as np

from .stats import ALPHA, finite, t_quantile

POWER = 0.8
MAX_SEEDS = 10_000  # seeds_needed gives up above this


def pooled_std(values, baseline) -> float:
    """The pooled standard deviation of two groups (NaN with fewer than 3 values in all)."""
    x, y = finite(values), finite(baseline)
    dof = len(x) + len(y) - 2
    if dof < 1 or len(x) < 1 or len(y) < 1:
        return np.nan
    ss = ((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum()
    return float(np.sqrt(ss / dof))


def power(n, effect, alpha: float = ALPHA) -> np.ndarray:
    """Power of the two-sided two-sample t-test with ``n`` seeds per group when the true
    difference is ``effect`` standard deviations (elementwise)."""
    # scipy.stats (~0.8 s): only when a difference does not resolve
    from scipy.stats import nct

    n, effect = np.asarray(n, dtype=float), np.asarray(effect, dtype=float)
    df = 2 * n - 2
    crit = t_quantile(df, 1 - alpha)
    nc = effect * np.sqrt(n / 2)
    return nct.sf(crit, df, nc) + nct.cdf(-crit, df, nc)


def seeds_needed_many(effect, alpha: float = ALPHA, target: float = POWER) -> np.ndarray:
    """``seeds_needed`` for an array of effects (in standard deviations): doubling, then
    bisection, all at once."""
    effect = np.abs(np.asarray(effect, dtype=float))
    ok = np.isfinite(effect) & (effect > 0)
    lo, hi = np.full(effect.shape, 2.0), np.full(effect.shape, 2.0)
    grow = ok.copy()
    while grow.any():
        short = np.zeros(effect.shape, dtype=bool)
        short[grow] = power(hi[grow], effect[grow], alpha) < target
        lo, hi = np.where(short, hi, lo), np.where(short, hi * 2, hi)
        grow = short & (hi <= MAX_SEEDS)
    searching = ok & (hi <= MAX_SEEDS)
    while (step := searching & (lo < hi)).any():
        mid = np.floor((lo + hi) / 2)
        enough = np.zeros(effect.shape, dtype=bool)
        enough[step] = power(mid[step], effect[step], alpha) >= target
        hi, lo = np.where(step & enough, mid, hi), np.where(step & ~enough, mid + 1, lo)
    return np.where(~ok, np.nan, np.where(hi > MAX_SEEDS, np.inf, hi))


def seeds_needed(diff: float, std: float, alpha: float = ALPHA, target: float = POWER) -> float:
    """The fewest seeds per group with which a two-sided two-sample t-test at ``alpha``
    resolves a true difference ``diff`` (groups of standard deviation ``std``) with
    probability ``target``: NaN when it cannot be said (no spread, no difference), inf
    above MAX_SEEDS."""
    if not (np.isfinite(diff) and np.isfinite(std)) or std <= 0 or diff == 0:
        return np.nan
    return float(seeds_needed_many(abs(diff) / std, alpha, target))


def rough(n: float) -> float:
    """A planning figure to one significant digit (17 -> 20, 283 -> 300; below 10 as is)."""
    if not np.isfinite(n) or n < 10:
        return n
    digits = 10 ** math.floor(math.log10(n))
    return float(math.floor(n / digits + 0.5) * digits)


def planning_alpha(comparisons: int) -> float:
    """The level a planned comparison is tested at: 5% over the comparisons (Bonferroni)."""
    return ALPHA / max(comparisons, 1)

