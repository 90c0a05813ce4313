"""Intervals and tests for results over a few seeds, whose coverage tests/test_report_stats.py
checks by simulation (normal, lognormal and Beta data; equal and unequal seed counts).

- a group's centre: the t-interval ``mean ± t(n-1) · s / √n``; on the log scale (losses,
  steps, seconds: ``scale="log"``) the same on the logarithms, i.e. the geometric mean and
  its interval;
- the difference of two groups (on the log scale: the ratio of geometric means):
  Welch's interval and test where both groups hold the same number of values; Banerjee's
  conservative interval, ``d ± √(t(nx-1)² vx + t(ny-1)² vy)`` (S. K. Banerjee, Sankhyā 22,
  1960), where they do not (Welch's estimated degrees of freedom let it cover 0.89 at 2 v 5
  seeds); the paired t-interval of the per-seed differences where asked for and the seeds
  are the same;
- several groups against one baseline: Holm's step-down adjustment of the p-values.

Values equal up to rounding (a spread at most ``RTOL`` times their size: relative on the
log scale) have no interval and no p-value, and neither has a group of one value: NaN,
never a zero-width interval or p ~ 0. A difference has none when both groups agree.

The work is done on arrays, one row per case (``means``, ``differences``,
``paired_differences``), so that a simulation runs thousands of cases in one call; the
scalar functions (``mean_ci``, ``difference``, ``paired``) drop non-finite values and use
the same code on one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import stdtr, stdtrit

LEVEL = 0.95
ALPHA = 0.05  # the tests' significance level, two-sided: 1 - LEVEL
# a spread at most this times the values' size is rounding, not seed noise: float64 sums of
# up to a million values err by ~1e-10 relative; float32 results that differ at all differ by
# at least its epsilon, ~1.2e-7 relative
RTOL = 1e-9
LOG = "log"
LINEAR = "linear"
TOO_FEW = "too few runs"
AGREE = "seeds agree"


def finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def t_quantile(df, level: float = LEVEL) -> np.ndarray:
    """Student's t quantile for a two-sided ``level`` interval, elementwise over ``df``
    (NaN where df is below 1 or not finite)."""
    df = np.asarray(df, dtype=float)
    out = np.full(df.shape, np.nan)
    ok = np.isfinite(df) & (df >= 1)
    out[ok] = stdtrit(df[ok], (1 + level) / 2)
    return out


def _two_sided_p(t, df) -> np.ndarray:
    return 2 * stdtr(df, -np.abs(t))


def _rows(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x.reshape(1, -1) if x.ndim == 1 else x


def _analysed(x: np.ndarray, scale: str) -> np.ndarray:
    if scale == LOG:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)
    return x


def _shown(a, scale: str):
    return np.exp(a) if scale == LOG else a


def _tolerance(*groups: np.ndarray, scale: str) -> np.ndarray:
    """Per row, the spread (on the analysis scale) at or below which values are equal up to
    rounding: RTOL times their largest size; on the log scale RTOL itself (a difference of
    logarithms is already relative)."""
    rows = groups[0].shape[0]
    if scale == LOG:
        return np.full(rows, RTOL)
    size = np.zeros(rows)
    for g in groups:
        if g.shape[1]:
            size = np.maximum(size, np.abs(g).max(axis=1))
    return RTOL * np.maximum(size, np.finfo(float).tiny)


def _spread(a: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """The sample standard deviation of each row, exactly 0 where it is within ``tol``
    (NaN with fewer than two values)."""
    if a.shape[1] < 2:
        return np.full(a.shape[0], np.nan)
    sd = a.std(axis=1, ddof=1)
    return np.where(sd <= tol, 0.0, sd)


@dataclass(frozen=True)
class Means:
    """Each row's centre (the mean; on the log scale the geometric mean), spread (the
    standard deviation; on the log scale the geometric standard deviation, a factor) and
    t-interval; ``agree``: the values are equal up to rounding (no interval)."""
    center: np.ndarray
    spread: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    agree: np.ndarray


def means(x, level: float = LEVEL, scale: str = LINEAR) -> Means:
    """The t-interval of the mean of each row of ``x`` (rows of n finite values; positive on
    the log scale)."""
    raw = _rows(x)
    a = _analysed(raw, scale)
    n = a.shape[1]
    center = a.mean(axis=1) if n else np.full(a.shape[0], np.nan)
    sd = _spread(a, _tolerance(raw, scale=scale))
    agree = sd == 0
    half = np.where(agree, np.nan, t_quantile(np.full(a.shape[0], n - 1.0), level) * sd / np.sqrt(max(n, 1)))
    return Means(_shown(center, scale), _shown(sd, scale), _shown(center - half, scale),
                 _shown(center + half, scale), agree)


def mean_ci(values, level: float = LEVEL, scale: str = LINEAR) -> tuple[float, float, float, float, int]:
    """(centre, spread, ci_low, ci_high, n) of the finite values (see ``means``): NaN where
    there are too few values, an interval of NaN where they agree."""
    x = finite(values)
    m = means(x, level, scale)
    return float(m.center[0]), float(m.spread[0]), float(m.lo[0]), float(m.hi[0]), len(x)


@dataclass(frozen=True)
class Differences:
    """Per row: the estimate (difference of the means; on the log scale the ratio of the
    geometric means), its interval, the two-sided p-value, and why there is no interval
    (``reason``: "" where there is one). ``effect``: the estimate on the analysis scale
    (the log ratio on the log scale; what power is computed from)."""
    estimate: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    p: np.ndarray
    reason: np.ndarray
    effect: np.ndarray
    method: str  # "Welch", "Banerjee" or "paired"; "" when no row can have an interval


def _no_interval(effect: np.ndarray, reason: str, scale: str) -> Differences:
    nan = np.full(effect.shape, np.nan)
    return Differences(_shown(effect, scale), nan, nan, nan, np.full(effect.shape, reason, dtype=object),
                       effect, "")


def _finish(effect, half, p, agree, method: str, scale: str) -> Differences:
    half = np.where(agree, np.nan, half)
    p = np.where(agree, np.nan, p)
    reason = np.where(agree, AGREE, "").astype(object)
    return Differences(_shown(effect, scale), _shown(effect - half, scale), _shown(effect + half, scale), p,
                       reason, effect, method)


def differences(x, y, level: float = LEVEL, scale: str = LINEAR) -> Differences:
    """Each row of ``x`` against the same row of ``y`` (finite values; positive on the log
    scale): Welch's interval and test where the two hold the same number of values,
    Banerjee's conservative interval (and the test it inverts) where they do not."""
    rx, ry = _rows(x), _rows(y)
    a, b = _analysed(rx, scale), _analysed(ry, scale)
    nx, ny = a.shape[1], b.shape[1]
    if nx == 0 or ny == 0:
        return _no_interval(np.full(max(a.shape[0], b.shape[0]), np.nan), "", scale)
    effect = a.mean(axis=1) - b.mean(axis=1)
    if nx < 2 or ny < 2:
        return _no_interval(effect, TOO_FEW, scale)
    tol = _tolerance(rx, ry, scale=scale)
    sx, sy = _spread(a, tol), _spread(b, tol)
    vx, vy = sx**2 / nx, sy**2 / ny
    agree = (vx + vy) == 0
    se = np.sqrt(np.where(agree, 1.0, vx + vy))
    if nx == ny:
        df = np.where(agree, 1.0, (vx + vy) ** 2 / np.where(agree, 1.0, vx**2 / (nx - 1) + vy**2 / (ny - 1)))
        half = t_quantile(df, level) * se
        return _finish(effect, half, _two_sided_p(effect / se, df), agree, "Welch", scale)
    qx, qy = t_quantile(nx - 1.0, level), t_quantile(ny - 1.0, level)
    half = np.sqrt(qx**2 * vx + qy**2 * vy)
    return _finish(effect, half, _banerjee_p(np.abs(effect), vx, vy, nx - 1.0, ny - 1.0), agree, "Banerjee", scale)


def _banerjee_p(d: np.ndarray, vx: np.ndarray, vy: np.ndarray, dfx: float, dfy: float) -> np.ndarray:
    """The smallest alpha at which Banerjee's interval excludes 0 (1 where d is 0, NaN where
    there is no spread): the alpha whose half-width ``h = √(t(1-alpha/2, dfx)² vx +
    t(1-alpha/2, dfy)² vy)`` equals ``d``."""
    out = np.where(d > 0, np.nan, 1.0)
    ok = (d > 0) & (vx + vy > 0)
    if ok.any():
        out[ok] = _banerjee_root(d[ok], vx[ok], vy[ok], dfx, dfy)
    return out


def _banerjee_root(d: np.ndarray, vx: np.ndarray, vy: np.ndarray, dfx: float, dfy: float) -> np.ndarray:
    """h falls as alpha grows; the root lies between the t-test's p-values at the larger
    and at the smaller of the two dfs, and regula falsi (the Illinois variant) on
    log(alpha) finds it to ~1e-12 relative in a dozen steps."""
    t = d / np.sqrt(vx + vy)

    def f(u):  # log h - log d: positive where the interval still holds 0
        q = -stdtrit([[dfx], [dfy]], np.exp(u) / 2)  # the upper quantile, from the lower tail: exact for tiny alpha
        return np.log(np.hypot(q[0] * np.sqrt(vx), q[1] * np.sqrt(vy)) / d)

    ua = np.log(np.maximum(_two_sided_p(t, max(dfx, dfy)), 1e-300))  # f >= 0 here
    ub = np.log(np.maximum(_two_sided_p(t, min(dfx, dfy)), 1e-300))  # f <= 0 here
    fa, fb = f(ua), f(ub)
    for _ in range(12):
        moving = fb != fa
        uc = np.where(moving, ub - fb * (ub - ua) / np.where(moving, fb - fa, 1.0), ub)
        fc = f(uc)
        crossed = fc * fb < 0  # the root lies between uc and ub: ub becomes the other end
        ua, fa = np.where(crossed, ub, ua), np.where(crossed, fb, fa / 2)
        ub, fb = uc, fc
    return np.exp(ub)


def paired_differences(x, y, level: float = LEVEL, scale: str = LINEAR) -> Differences:
    """The paired t-interval and test of each row's mean per-seed difference; ``x[:, i]``
    and ``y[:, i]`` are the same seed's results."""
    rx, ry = _rows(x), _rows(y)
    d = _analysed(rx, scale) - _analysed(ry, scale)
    n = d.shape[1]
    effect = d.mean(axis=1) if n else np.full(d.shape[0], np.nan)
    if n < 2:
        return _no_interval(effect, TOO_FEW if n else "", scale)
    sd = _spread(d, _tolerance(rx, ry, scale=scale))
    agree = sd == 0
    se = np.where(agree, 1.0, sd) / np.sqrt(n)
    half = t_quantile(n - 1.0, level) * se
    return _finish(effect, half, _two_sided_p(effect / se, n - 1.0), agree, "paired", scale)


@dataclass(frozen=True)
class Difference:
    """``values`` against ``baseline``: the estimate (difference, or ratio on the log
    scale), its interval and test; ``reason`` says why there is no interval."""
    estimate: float
    lo: float = np.nan
    hi: float = np.nan
    p: float = np.nan
    method: str = ""
    reason: str = ""
    effect: float = np.nan  # on the analysis scale (log ratio on the log scale)
    scale: str = LINEAR

    @property
    def known(self) -> bool:
        return bool(np.isfinite(self.lo) and np.isfinite(self.hi))

    @property
    def excludes_no_effect(self) -> bool:
        """The interval lies wholly on one side of no effect (0; a ratio of 1)."""
        null = 1.0 if self.scale == LOG else 0.0
        return self.known and (self.lo > null or self.hi < null)


def _one(d: Differences, scale: str) -> Difference:
    return Difference(float(d.estimate[0]), float(d.lo[0]), float(d.hi[0]), float(d.p[0]),
                      d.method if np.isfinite(d.lo[0]) else "", str(d.reason[0]), float(d.effect[0]), scale)


def difference(values, baseline, level: float = LEVEL, scale: str = LINEAR) -> Difference:
    """``values`` against ``baseline`` (finite values only): see ``differences``."""
    return _one(differences(finite(values), finite(baseline), level, scale), scale)


def paired(values, baseline, level: float = LEVEL, scale: str = LINEAR) -> Difference:
    """The paired comparison: ``values[i]`` and ``baseline[i]`` are the same seed's
    results; a seed without both is left out."""
    x, y = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return _one(paired_differences(x[keep], y[keep], level, scale), scale)


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
