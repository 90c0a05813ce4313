"""What each group's comparison with the baseline may claim.

- The result is compared over the runs that have it (completed runs with a finite value):
  ``stats.difference`` (or ``stats.paired``), on the metric's scale.
- A verdict ("yes" / "no": does the interval exclude no difference, and does it after
  Holm's correction) never hides the runs that did not count. Where either group lost runs
  to divergence (or has completed runs without the number), it is **conditional** on the
  runs that survived: ``yes (conditional)``, and ``verdicts rest on`` says ``conditional:
  2 of 5 completed``; a setting that diverges 3 times in 5 is never crowned on its 2
  survivors. Failed and interrupted runs are not results; they are counted and left out,
  and the verdict says it is **incomplete**.
- How often each group diverged is compared on its own: Fisher's exact test of its share
  of diverged runs (of those that completed or diverged) against the baseline's,
  Holm-adjusted over the groups tested.
- Where a comparison does not resolve after Holm, a rough planning figure: the seeds per
  group that would resolve a difference of its size with 80% power at 5% over the
  comparisons (``power.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import power, stats
from .metrics import METRICS, SCALES


def effect_columns(metric: str, scale: str) -> dict[str, str]:
    """The names of the comparison's columns: ``Δ final val acc vs baseline``, ``Δ CI low``,
    ``Δ CI excludes 0``...; on the log scale ``ratio ... (geometric means)``, ``ratio CI
    excludes 1``."""
    s = SCALES[scale]
    null = f"{s.no_effect:g}"
    return {"effect": f"{s.effect} {METRICS[metric].label} vs baseline{s.effect_label}",
            "lo": f"{s.effect} CI low", "hi": f"{s.effect} CI high",
            "excludes": f"{s.effect} CI excludes {null}", "after": f"{s.effect} excludes {null} after Holm"}


def compare(x: pd.Series, base: pd.Series, paired: bool, scale: str) -> stats.Difference:
    """``x`` against ``base`` (values by seed): paired when asked and both hold the same seeds."""
    same_seeds = len(x) >= 2 and x.index.is_unique and base.index.is_unique and set(x.index) == set(base.index)
    if paired and same_seeds:
        return stats.paired(x.sort_index().to_numpy(), base.sort_index().to_numpy(), scale=scale)
    return stats.difference(x.to_numpy(), base.to_numpy(), scale=scale)


def conditions(group: pd.Series, base: pd.Series) -> tuple[str, str]:
    """What a verdict rests on, from both groups' counts (``completed``, ``diverged``,
    ``failed``, ``interrupted``, ``values``): its qualifier (``conditional``,
    ``incomplete``, both, or "" when every run of both counts) and the detail
    (``conditional: 2 of 5 completed; incomplete: baseline 1 failed``)."""
    conditional, incomplete = [], []
    for who, row in (("", group), ("baseline ", base)):
        results = int(row["completed"] + row["diverged"])
        if row["values"] < results:
            word = "completed" if row["values"] == row["completed"] else "with a value"
            conditional.append(f"{who}{int(row['values'])} of {results} {word}")
        incomplete += [f"{who}{int(row[s])} {s}" for s in ("failed", "interrupted") if row[s]]
    parts = {"conditional": conditional, "incomplete": incomplete}
    return (", ".join(k for k, v in parts.items() if v),
            "; ".join(f"{k}: {', '.join(v)}" for k, v in parts.items() if v))


def verdict(resolved: bool | None, qualifier: str) -> str:
    """``yes``, ``no (conditional)``; "" when there is nothing to say."""
    if resolved is None:
        return ""
    return ("yes" if resolved else "no") + (f" ({qualifier})" if qualifier else "")


def divergence_p(group: pd.Series, base: pd.Series) -> float:
    """Fisher's exact test (two-sided) of the group's share of diverged runs against the
    baseline's; NaN when neither diverged (nothing to test) or one has no results."""
    # scipy.stats (~0.8 s): only when runs diverged
    from scipy.stats import fisher_exact

    if group["diverged"] + base["diverged"] == 0 or min(group["completed"] + group["diverged"],
                                                        base["completed"] + base["diverged"]) == 0:
        return np.nan
    return float(fisher_exact([[group["diverged"], group["completed"]], [base["diverged"], base["completed"]]]).pvalue)


def compare_with_baseline(table: pd.DataFrame, by_group: dict[str, pd.Series], metric: str, scale: str, base: str,
                          paired: bool) -> tuple[pd.DataFrame, int, int]:
    """The comparison columns of ``table`` (indexed by group, with the counts), the number of
    comparisons that entered Holm's correction, and the number of divergence tests."""
    names = effect_columns(metric, scale)
    empty = pd.Series(dtype=float)
    others = [g for g in table.index if g != base]
    diffs = {g: compare(by_group.get(g, empty), by_group.get(base, empty), paired, scale) for g in others}
    p = pd.Series({g: d.p for g, d in diffs.items()}, dtype=float).reindex(table.index)
    table[names["effect"]] = pd.Series({g: d.estimate for g, d in diffs.items()}, dtype=float)
    table[names["lo"]] = pd.Series({g: d.lo for g, d in diffs.items()}, dtype=float)
    table[names["hi"]] = pd.Series({g: d.hi for g, d in diffs.items()}, dtype=float)
    table["method"] = pd.Series({g: d.method for g, d in diffs.items()}, dtype=object).reindex(table.index).fillna("")
    table["no interval because"] = pd.Series({g: d.reason for g, d in diffs.items()}, dtype=object).reindex(
        table.index).fillna("")
    table["p"], table["p (Holm)"] = p, stats.holm(p.to_numpy())
    cond = {g: conditions(table.loc[g], table.loc[base]) for g in others}
    table[names["excludes"]] = [
        "baseline" if g == base else verdict(diffs[g].excludes_no_effect if diffs[g].known else None, cond[g][0])
        for g in table.index]
    table[names["after"]] = [
        "baseline" if g == base else verdict(bool(q < stats.ALPHA) if np.isfinite(q) else None, cond[g][0])
        for g, q in zip(table.index, table["p (Holm)"], strict=True)]
    table["verdicts rest on"] = pd.Series({g: c[1] for g, c in cond.items()}, dtype=object).reindex(
        table.index).fillna("")
    fisher = pd.Series({g: divergence_p(table.loc[g], table.loc[base]) for g in others}, dtype=float)
    table["diverged p (Fisher)"] = fisher.reindex(table.index)
    table["diverged p (Fisher, Holm)"] = stats.holm(table["diverged p (Fisher)"].to_numpy())
    comparisons = int(np.isfinite(p).sum())
    table["seeds for 80% power (rough)"] = _planning(table, diffs, by_group, base, scale, comparisons)
    return table, comparisons, int(np.isfinite(fisher).sum())


def _planning(table: pd.DataFrame, diffs: dict, by_group: dict, base: str, scale: str, comparisons: int) -> list:
    """Seeds per group for 80% power at 5% over the comparisons, rounded, where a
    comparison has an interval and does not resolve after Holm."""
    def analysed(g) -> np.ndarray:
        values = by_group.get(g, pd.Series(dtype=float)).to_numpy(dtype=float)
        return np.log(values) if scale == stats.LOG else values

    alpha = power.planning_alpha(comparisons)
    out = []
    for g, q in zip(table.index, table["p (Holm)"], strict=True):
        if g == base or not diffs[g].known or not q >= stats.ALPHA:
            out.append(np.nan)
            continue
        std = power.pooled_std(analysed(g), analysed(base))
        out.append(power.rough(power.seeds_needed(diffs[g].effect, std, alpha)))
    return out
