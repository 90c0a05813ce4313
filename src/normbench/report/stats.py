"""Bootstrap confidence intervals, vectorised with numpy and seeded, so that the same
runs always give the same report.

Percentile intervals: resample the seeds of a group with replacement ``resamples``
times (all resamples drawn as one index array), take the mean of each resample, and
report the 2.5th and 97.5th percentiles of those means. A group with fewer than two
values has no interval (NaN), never a fake zero-width one.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``resamples`` means of ``values`` resampled with replacement: shape (resamples,)."""
    values = np.asarray(values, dtype=float)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))  # (B, n)
    return values[idx].mean(axis=1)


def _interval(means: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def mean_ci(values, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED,
            stream: int = 0) -> tuple[float, float, float, float, int]:
    """(mean, std, ci_low, ci_high, n) of the finite values; std is the sample standard
    deviation (ddof=1). NaN where there are too few values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, np.nan, np.nan, np.nan, n
    lo, hi = _interval(bootstrap_means(x, resamples, _rng(seed, stream)), level)
    return mean, float(x.std(ddof=1)), lo, hi, n


def diff_ci(values, baseline, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED,
            stream: int = 0) -> tuple[float, float, float]:
    """(difference of means, ci_low, ci_high) of ``values`` minus ``baseline``: each group
    resampled independently, the difference taken resample by resample."""
    x = np.asarray(values, dtype=float)
    y = np.asarray(baseline, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) == 0 or len(y) == 0:
        return np.nan, np.nan, np.nan
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return diff, np.nan, np.nan
    rng = _rng(seed, stream)
    lo, hi = _interval(bootstrap_means(x, resamples, rng) - bootstrap_means(y, resamples, rng), level)
    return diff, lo, hi


def t_quantile(df: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """Student's t quantile for a two-sided ``level`` interval, elementwise over ``df``
    (NaN where df < 1)."""
    from scipy.special import stdtrit

    df = np.asarray(df, dtype=float)
    out = np.full(df.shape, np.nan)
    ok = df >= 1
    out[ok] = stdtrit(df[ok], (1 + level) / 2)
    return out
