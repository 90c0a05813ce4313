"""The report's intervals and tests hold what they claim, checked by simulation with the
report's own functions (vectorized: one call per cell of 4,000 simulated sweeps).

Each cell compares a group of ``nx`` seeds with a baseline of ``ny`` seeds (2 v 2, 2 v 5,
2 v 10, 3 v 10, 5 v 10) whose spreads stand 1:1, 1:3 or 3:1 (the first group's to the
baseline's), for three kinds of data:

- normal: sd 0.01 for the quieter group, 0.03 for the noisier, means 0.91 and 0.90;
- lognormal (a loss, steps, seconds): log-sd 0.5 for the noisier group, 0.5/3 for the
  quieter, on the log scale (the ratio of geometric means, true value e^0.2);
- accuracy near its ceiling: Beta(97, 3) (mean 0.97, skewed) for the noisier group and a
  Beta of the same mean and a third of its sd (a + b = 908) for the quieter; means 0.97
  and 0.96.

Coverage: how often the interval holds the true difference (ratio). False "yes": how often
it excludes 0 (1) when the two groups have the same mean (geometric mean). The same checks
of the report's old Welch interval fail the cells with unequal seed counts, and the old
percentile bootstrap fails everywhere. ``python tests/test_report_stats.py`` prints the
table the README shows.
"""

from __future__ import annotations

import numpy as np
import pytest

from normbench.report import power, stats

TRIALS = 4000
CELLS = [(2, 2), (2, 5), (2, 10), (3, 10), (5, 10)]
RATIOS = {"1:1": (1, 1), "1:3": (1, 3), "3:1": (3, 1)}
KINDS = ("normal", "lognormal", "beta")
SCALE = {"normal": "linear", "lognormal": "log", "beta": "linear"}


def draw(kind: str, rng, n: int, noise: int, mean: float) -> np.ndarray:
    """TRIALS groups of n seeds; ``noise`` 3 is the noisier group, 1 the quieter."""
    size = (TRIALS, n)
    if kind == "normal":
        return rng.normal(mean, 0.01 * noise, size)
    if kind == "lognormal":
        return np.exp(rng.normal(mean, 0.5 * noise / 3, size))
    total = 100.0 if noise == 3 else 101.0 * 9 - 1  # Beta(97, 3); the same mean at a third of the sd
    return rng.beta(mean * total, (1 - mean) * total, size)


MEANS = {"normal": (0.91, 0.90), "lognormal": (0.2, 0.0), "beta": (0.97, 0.96)}
TRUE = {"normal": 0.01, "lognormal": np.exp(0.2), "beta": 0.01}
NULL = {"normal": 0.0, "lognormal": 1.0, "beta": 0.0}


def groups(kind: str, nx: int, ny: int, ratio: str, same_mean: bool, seed: int, arithmetic: bool = False):
    """The cell's TRIALS simulated pairs of groups (x, baseline y). ``arithmetic``: lognormal
    groups whose arithmetic (not geometric) means are equal when ``same_mean``."""
    rng = np.random.default_rng([seed, nx, ny, *RATIOS[ratio], KINDS.index(kind), same_mean])
    a, b = RATIOS[ratio]
    mx, my = MEANS[kind]
    if same_mean:
        mx = my + (arithmetic and kind == "lognormal") * ((0.5 * b / 3) ** 2 - (0.5 * a / 3) ** 2) / 2
    return draw(kind, rng, nx, a, mx), draw(kind, rng, ny, b, my)


def true_difference(kind: str, ratio: str, arithmetic: bool) -> float:
    if not (arithmetic and kind == "lognormal"):
        return TRUE[kind]
    a, b = RATIOS[ratio]  # the difference of lognormal means, e^(mu + sigma^2 / 2)
    return np.exp(MEANS[kind][0] + (0.5 * a / 3) ** 2 / 2) - np.exp(MEANS[kind][1] + (0.5 * b / 3) ** 2 / 2)


def report_interval(x, y, kind):
    d = stats.differences(x, y, scale=SCALE[kind])
    return d.lo, d.hi


def old_welch(x, y, kind=None):
    """The report's interval of a difference before this version: Welch-Satterthwaite at
    any seed counts, on the values as they are, no interval only where se is exactly 0."""
    nx, ny = x.shape[1], y.shape[1]
    vx, vy = x.var(axis=1, ddof=1) / nx, y.var(axis=1, ddof=1) / ny
    se2 = vx + vy
    with np.errstate(divide="ignore", invalid="ignore"):
        df = se2**2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1))
        half = stats.t_quantile(df) * np.sqrt(se2)
    half = np.where(se2 == 0, np.nan, half)
    d = x.mean(axis=1) - y.mean(axis=1)
    return d - half, d + half


def hsu(x, y, kind=None):
    """Welch's standard error with Hsu's degrees of freedom, min(nx, ny) - 1: the other
    conservative choice, wider than Banerjee's wherever the counts differ."""
    se = np.sqrt(x.var(axis=1, ddof=1) / x.shape[1] + y.var(axis=1, ddof=1) / y.shape[1])
    half = stats.t_quantile(min(x.shape[1], y.shape[1]) - 1.0) * se
    d = x.mean(axis=1) - y.mean(axis=1)
    return d - half, d + half


def welch_width(x, y, kind):
    lo, hi = old_welch(stats._analysed(x, SCALE[kind]), stats._analysed(y, SCALE[kind]))
    return hi - lo


def check(interval, kind: str, nx: int, ny: int, ratio: str, seed: int = 0,
          arithmetic: bool = False) -> tuple[float, float]:
    """(coverage, false "yes") of ``interval`` in one cell. ``arithmetic``: of the
    difference of arithmetic means, what the old report compared for lognormal data too."""
    true, null = true_difference(kind, ratio, arithmetic), 0.0 if arithmetic else NULL[kind]
    lo, hi = interval(*groups(kind, nx, ny, ratio, False, seed), kind)
    covered = float(np.mean((lo <= true) & (true <= hi)))
    lo, hi = interval(*groups(kind, nx, ny, ratio, True, seed, arithmetic), kind)
    false_yes = float(np.mean((lo > null) | (hi < null)))
    return covered, false_yes


# the group's own interval


def group_coverage(kind: str, n: int, scale: str, sigma: float = 0.5) -> float:
    rng = np.random.default_rng([7, n, KINDS.index(kind)])
    if kind == "normal":
        x, true = rng.normal(0.9, 0.02, (TRIALS, n)), 0.9
    elif kind == "lognormal":  # the geometric mean on the log scale; the arithmetic mean on the linear
        x = np.exp(rng.normal(0.0, sigma, (TRIALS, n)))
        true = 1.0 if scale == "log" else np.exp(sigma**2 / 2)
    else:
        x, true = rng.beta(97, 3, (TRIALS, n)), 0.97
    m = stats.means(x, scale=scale)
    return float(np.mean((m.lo <= true) & (true <= m.hi)))


@pytest.mark.parametrize("n", (2, 3, 5, 10))
def test_a_groups_interval_covers_its_centre_from_two_seeds_up(n):
    assert 0.93 <= group_coverage("normal", n, "linear") <= 0.97
    for sigma in (0.5, 1.0):  # a loss or a count: the geometric mean, on the log scale
        assert 0.93 <= group_coverage("lognormal", n, "log", sigma) <= 0.97
    assert group_coverage("beta", n, "linear") >= 0.92  # an accuracy near its ceiling


def test_the_arithmetic_mean_of_skewed_data_was_not_covered():
    """Why losses, steps and seconds are summarized by their geometric mean: the t-interval
    of the arithmetic mean of lognormal(0, 1) data covers far less than 95%."""
    assert all(group_coverage("lognormal", n, "linear", 1.0) < 0.91 for n in (3, 5, 10))


# the difference to the baseline


@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("nx, ny", CELLS, ids=[f"{a}v{b}" for a, b in CELLS])
@pytest.mark.parametrize("kind", KINDS)
def test_the_difference_interval_holds_in_every_cell(kind, nx, ny, ratio):
    covered, false_yes = check(report_interval, kind, nx, ny, ratio)
    assert covered >= (0.92 if kind == "beta" else 0.93), covered
    if nx == ny:
        assert covered <= 0.99, covered  # no blanket over-caution where Welch holds
    assert false_yes <= 0.06, false_yes


def test_the_old_welch_interval_fails_where_seed_counts_differ():
    """The check above is not one any interval passes: Welch's estimated degrees of freedom
    cover 0.89 at 2 v 5 and 2 v 10 seeds when the smaller group is the noisier."""
    for nx, ny in ((2, 5), (2, 10)):
        covered, false_yes = check(old_welch, "normal", nx, ny, "3:1")
        assert covered < 0.91 and false_yes > 0.09, (nx, ny, covered, false_yes)
    covered, false_yes = check(old_welch, "normal", 2, 10, "1:1")  # even at equal spreads
    assert covered < 0.92 and false_yes > 0.08
    covered, false_yes = check(old_welch, "beta", 2, 10, "3:1")
    assert covered < 0.9 and false_yes > 0.1
    covered, _ = check(report_interval, "normal", 2, 5, "3:1")
    assert covered >= 0.95  # the report's interval in the same cell, the same draws


def test_the_conservative_interval_costs_width_only_where_seed_counts_differ():
    """Banerjee's interval against Welch's on the same draws: never narrower, the same at
    equal counts (Welch is used there), at most ~3 times as wide at 2 v 10."""
    for nx, ny in CELLS:
        for ratio in RATIOS:
            x, y = groups("normal", nx, ny, ratio, False, 0)
            lo, hi = report_interval(x, y, "normal")
            ratio_ = np.median((hi - lo) / welch_width(x, y, "normal"))
            assert (ratio_ == pytest.approx(1.0)) if nx == ny else (1.0 < ratio_ < 3.0), (nx, ny, ratio, ratio_)


def percentile_bootstrap(values, resamples=2000, level=0.95, rng=None):
    """The report's first interval of a mean: resample the seeds, take percentiles."""
    idx = rng.integers(0, values.shape[1], size=(resamples, values.shape[1]))
    means = values[:, idx].mean(axis=2)
    return np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=1)


def test_the_percentile_bootstrap_the_report_used_first_fails_the_same_check():
    rng = np.random.default_rng(3)
    x = rng.normal(0.9, 0.02, (1000, 3))
    lo, hi = percentile_bootstrap(x, resamples=500, rng=rng)
    assert np.mean((lo <= 0.9) & (0.9 <= hi)) < 0.8


@pytest.mark.parametrize("n", (2, 3, 5, 10))
def test_the_paired_interval_covers_and_rarely_fires_on_noise(n):
    rng = np.random.default_rng([11, n])
    shared = rng.normal(0.9, 0.02, (TRIALS, n))  # what a seed does to both settings
    x, y = shared + 0.01 + rng.normal(0, 0.01, (TRIALS, n)), shared + rng.normal(0, 0.005, (TRIALS, n))
    d = stats.paired_differences(x, y)
    assert 0.93 <= np.mean((d.lo <= 0.01) & (0.01 <= d.hi)) <= 0.97
    d = stats.paired_differences(x - 0.01, y)
    assert np.mean((d.lo > 0) | (d.hi < 0)) <= 0.06


# ties


def test_values_that_tie_give_no_interval_no_p_value_and_no_yes():
    """Validation accuracy is a count: five seeds at 350/360 against five at 349/360 tie.
    The float mean leaves a spread of ~1e-16; the old check (== 0) gave a zero-width
    interval, p < 0.001 and "yes"."""
    x, y = [350 / 360] * 5, [349 / 360] * 5
    lo, hi = old_welch(np.array([x]), np.array([y]))
    assert lo[0] > 0 and hi[0] - lo[0] < 1e-12  # the old interval: zero width, "yes"
    mean, std, lo, hi, n = stats.mean_ci([359 / 360] * 5)
    assert (std, n) == (0.0, 5) and np.isnan(lo) and np.isnan(hi)
    for d in (stats.difference(x, y), stats.paired(x, y), stats.difference(x, [349 / 360] * 3),
              stats.paired([0.95, 0.96, 0.97], [0.94, 0.95, 0.96]),  # paired differences all equal
              stats.difference([2.5e6] * 3, [2.4e6] * 3, scale="log")):
        assert not d.known and np.isnan(d.p) and not d.excludes_no_effect and d.reason == "seeds agree", d
    assert stats.difference(x, y).estimate == pytest.approx(1 / 360)
    # one value: too few runs, whichever group it is in; one group tied, the other not: an interval
    assert stats.difference([0.9], [0.8, 0.82]).reason == stats.difference([0.8, 0.82], [0.9]).reason == "too few runs"
    one_tied = stats.difference(x, [349 / 360, 350 / 360, 348 / 360, 349 / 360, 351 / 360])
    assert one_tied.known and one_tied.reason == ""
    # a true spread far below the values' size is still a spread: float32 results differ by 1e-7 and up
    assert stats.mean_ci([1.0, 1.0 + 1e-7, 1.0 - 1e-7])[2] < 1.0


def test_too_few_values_give_no_interval_and_non_finite_values_are_left_out():
    assert np.isnan(stats.mean_ci([])[0])
    mean, std, lo, hi, n = stats.mean_ci([0.9, np.nan])
    assert (mean, n) == (0.9, 1) and np.isnan(std) and np.isnan(lo) and np.isnan(hi)
    d = stats.difference([0.9, np.inf], [0.8, 0.82])
    assert d.estimate == pytest.approx(0.09) and not d.known and np.isnan(d.p)
    assert np.isnan(stats.difference([], [0.8, 0.82]).estimate)


# the formulas


def test_the_intervals_match_the_textbook_formulas():
    from scipy import stats as scipy_stats

    values = np.array([0.91, 0.93, 0.90, 0.95, 0.92, 0.94])
    mean, std, lo, hi, n = stats.mean_ci(values)
    half = 2.570582 * values.std(ddof=1) / np.sqrt(6)  # t(0.975, 5)
    assert (mean, std, n) == (pytest.approx(values.mean()), pytest.approx(values.std(ddof=1)), 6)
    assert (lo, hi) == (pytest.approx(mean - half), pytest.approx(mean + half))
    a, b = values, np.array([0.90, 0.89, 0.92, 0.88, 0.93, 0.91])
    d = stats.difference(a, b)  # equal counts: Welch, as scipy computes it
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert d.p == pytest.approx(expected.pvalue) and d.method == "Welch"
    ci = expected.confidence_interval(0.95)
    assert (d.lo, d.hi) == (pytest.approx(ci.low), pytest.approx(ci.high))
    b = b[:4]  # unequal counts: Banerjee's interval, each group's variance with its own t quantile
    d = stats.difference(a, b)
    half = np.sqrt(2.570582**2 * a.var(ddof=1) / 6 + 3.182446**2 * b.var(ddof=1) / 4)  # t(0.975, 5), t(0.975, 3)
    assert d.method == "Banerjee" and (d.lo, d.hi) == (pytest.approx(a.mean() - b.mean() - half),
                                                      pytest.approx(a.mean() - b.mean() + half))
    p = stats.paired(a[:4], b)
    assert p.p == pytest.approx(scipy_stats.ttest_rel(a[:4], b).pvalue) and p.method == "paired"
    loss, base = np.array([0.21, 0.25, 0.19]), np.array([0.30, 0.36, 0.33])  # the log scale: scipy on the logs
    r = stats.difference(loss, base, scale="log")
    ci = scipy_stats.ttest_ind(np.log(loss), np.log(base), equal_var=False).confidence_interval(0.95)
    assert r.estimate == pytest.approx(np.exp(np.log(loss).mean() - np.log(base).mean()))
    assert (r.lo, r.hi) == (pytest.approx(np.exp(ci.low)), pytest.approx(np.exp(ci.high)))
    assert r.excludes_no_effect and r.hi < 1  # a lower loss: a ratio below 1
    g = stats.mean_ci(loss, scale="log")
    assert g[0] == pytest.approx(np.exp(np.log(loss).mean())) and g[1] == pytest.approx(np.exp(np.log(loss).std(ddof=1)))


def test_the_p_value_says_what_the_interval_says():
    """p < 0.05 exactly when the 95% interval excludes 0, for Welch and for Banerjee (whose
    p-value is found by inverting the interval)."""
    rng = np.random.default_rng(2)
    for nx, ny in ((3, 3), (2, 5), (5, 10)):
        d = stats.differences(rng.normal(0.03, 0.01, (2000, nx)), rng.normal(0, 0.02, (2000, ny)))
        excludes = (d.lo > 0) | (d.hi < 0)
        differ = (d.p < 0.05) != excludes
        assert not (differ & (np.abs(d.p - 0.05) > 1e-9)).any() and 0.05 < excludes.mean() < 0.95
        again = stats.differences(rng.normal(0, 1, (1, nx)), rng.normal(0, 1, (1, ny)), level=0.99)
        assert 0 <= again.p[0] <= 1


def test_holm_adjusts_step_down_and_keeps_the_order():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.20])
    adjusted = stats.holm(p)
    # sorted 0.01, 0.03, 0.04, 0.20 with m = 4: 0.04, 0.09, max(0.09, 0.08), 0.20
    assert adjusted[[0, 3, 1, 4]] == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert np.isnan(adjusted[2])
    assert (stats.holm([0.5, 0.9]) <= 1).all()


# seeds for 80% power


def test_seeds_needed_agrees_with_the_power_it_promises():
    n = power.seeds_needed(0.01, 0.01)  # one standard deviation: the textbook answer is 17 per group
    assert n == 17
    assert power.power(17, 1.0) >= 0.8 > power.power(16, 1.0)
    rng = np.random.default_rng(5)  # and by simulation: with n seeds, the test resolves it about 80% of the time
    d = stats.differences(rng.normal(0.01, 0.01, (TRIALS, 17)), rng.normal(0, 0.01, (TRIALS, 17)))
    assert 0.77 <= np.mean((d.lo > 0) | (d.hi < 0)) <= 0.83
    assert power.seeds_needed(0.01, 0.01, alpha=0.05 / 3) == 23  # three comparisons: Bonferroni's 5%/3
    assert np.isnan(power.seeds_needed(0.0, 0.01)) and np.isnan(power.seeds_needed(0.01, 0.0))
    assert power.seeds_needed(1e-6, 1.0) == np.inf
    assert [power.rough(n) for n in (6, 17, 24, 41, 283, np.inf)] == [6, 20, 20, 40, 300, np.inf]


def planning_spread(n: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """The 10th, 50th and 90th percentile of the planning figure from n seeds per group
    when the true answer is 17 (a difference of one standard deviation, at 5%)."""
    rng = np.random.default_rng([13, n])
    x, y = rng.normal(1.0, 1.0, (TRIALS, n)), rng.normal(0.0, 1.0, (TRIALS, n))
    pooled = np.sqrt((x.var(axis=1, ddof=1) + y.var(axis=1, ddof=1)) / 2)
    needed = power.seeds_needed_many((x.mean(axis=1) - y.mean(axis=1)) / pooled, alpha)
    return tuple(np.percentile(needed, [10, 50, 90]))


def test_the_planning_figure_is_rough_at_a_few_seeds():
    """What the README says: from 3 seeds per group the figure for a true 17 runs from
    about 4 to about 300 (10th to 90th percentile); from 10 seeds, from about 7 to 80."""
    low, middle, high = planning_spread(3)
    assert low <= 5 and high >= 200 and 10 <= middle <= 20
    low, middle, high = planning_spread(10)
    assert low <= 8 and high >= 60 and 12 <= middle <= 20


def table() -> str:
    """The README's table: each cell's coverage and false "yes", old (Welch on the values as
    they are: for lognormal data the difference of arithmetic means) and new, and the new
    interval's median width against Welch's on the same scale."""
    lines = ["| data | seeds | sd ratio | coverage: old / new | false \"yes\": old / new | width vs Welch: new "
             "(Hsu's) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for kind in KINDS:
        for nx, ny in CELLS:
            for ratio in RATIOS:
                before = check(old_welch, kind, nx, ny, ratio, arithmetic=True)
                after = check(report_interval, kind, nx, ny, ratio)
                x, y = groups(kind, nx, ny, ratio, False, 0)
                lo, hi = report_interval(x, y, kind)
                a = stats._analysed
                width = np.median((a(hi, SCALE[kind]) - a(lo, SCALE[kind])) / welch_width(x, y, kind))
                lo, hi = hsu(a(x, SCALE[kind]), a(y, SCALE[kind]))
                other = np.median((hi - lo) / welch_width(x, y, kind))
                lines.append(f"| {kind} | {nx} v {ny} | {ratio} | {before[0]:.3f} / {after[0]:.3f} | "
                             f"{before[1]:.3f} / {after[1]:.3f} | {width:.2f} ({other:.2f}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
    for n in (2, 3, 5, 10):
        print(n, "seeds: group coverage normal / lognormal(0,0.5) log / lognormal(0,1) log / beta:",
              [round(group_coverage(*a), 3) for a in (("normal", n, "linear"), ("lognormal", n, "log", 0.5),
                                                        ("lognormal", n, "log", 1.0), ("beta", n, "linear"))],
              "old, arithmetic: lognormal(0,0.5) / (0,1):",
              [round(group_coverage("lognormal", n, "linear", s), 3) for s in (0.5, 1.0)])
    for n in (3, 5, 10):
        print(n, "seeds: planning figure for a true 17, 10/50/90th percentiles:",
              [float(v) for v in planning_spread(n)])
