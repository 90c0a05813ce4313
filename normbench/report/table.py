"""Runs -> one row per configuration group: counts by status; the mean, standard deviation
and t-interval of each result over the completed runs; and the difference to a baseline
group with its Welch (or paired) interval, p-value, Holm-adjusted p-value, and, where it
does not resolve, the seeds per group that a difference of its size would need.

Groups are built from the settings that vary, read from each run's resolved config
(``norm.name``, ``placement``, ...), never from directory names; a setting that cannot
change a run's network (``placement`` with ``norm=none``) reads ``n/a`` and is left out
of its group's name.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..norms import NOT_APPLICABLE
from ..rundir import RUN_MANAGEMENT, STATUSES
from . import stats
from .metrics import METRICS, QUANTITIES

# settings that never change a result: not grouping axes by default
NOT_AXES = ("seed", *RUN_MANAGEMENT)


def short(key: str) -> str:
    """A config key as users type it: ``norm.name`` -> ``norm`` (the group's option)."""
    return key.removesuffix(".name")


def value_text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve_axes(runs: pd.DataFrame, config_keys: list[str], by: list[str] | None) -> list[str]:
    """The dotted config keys to group by: those given (``norm`` meaning ``norm.name``), or
    by default every key whose value differs between runs, but for NOT_AXES."""
    if by is None:
        text = {k: runs[f"config.{k}"].map(value_text) for k in config_keys}
        # n/a (a setting a run's norm ignores) is no value of its own: it does not make a key vary
        varying = [k for k in config_keys if k not in NOT_AXES and text[k][text[k] != NOT_APPLICABLE].nunique() > 1]
        names = set(varying)
        # a group's own keys (norm.momentum, ...) that change only with its option (norm.name,
        # e.g. absent for norm=none) say nothing the option does not
        return [k for k in varying
                if not (k.rpartition(".")[0] and (name := k.rpartition(".")[0] + ".name") in names and name != k
                        and text[k].groupby(text[name]).nunique().max() <= 1)]
    axes = []
    for name in by:
        key = name if name in config_keys else f"{name}.name" if f"{name}.name" in config_keys else None
        if key is None:
            allowed = ", ".join(sorted(set(map(short, config_keys))))
            raise UsageError(f"--by {name}: not a config key of these runs; allowed: {allowed}")
        axes.append(key)
    return list(dict.fromkeys(axes))


def group_labels(runs: pd.DataFrame, axes: list[str]) -> pd.Series:
    """``norm=bn placement=pre`` for each run (``norm=none``: a setting that cannot change
    the network is left out); ``all runs`` when nothing is grouped on."""
    if not axes:
        return pd.Series("all runs", index=runs.index)
    parts = pd.DataFrame({k: f"{short(k)}=" + runs[f"config.{k}"].map(value_text) for k in axes})

    def label(row) -> str:  # n/a parts left out, unless nothing else is left
        kept = [p for p in row if not p.endswith("=" + NOT_APPLICABLE)]
        return " ".join(kept or list(row))
    return parts.apply(label, axis=1)


def parse_baseline(text: str) -> dict[str, str]:
    """``norm=none placement=pre`` (or with commas) -> {"norm": "none", "placement": "pre"}."""
    pairs = [p for p in re.split(r"[\s,]+(?=[\w.]+=)", text.strip()) if p]
    if not pairs or any("=" not in p for p in pairs):
        raise UsageError(f"--baseline {text}: not key=value; allowed: settings of one group, e.g. "
                         f"--baseline norm=none")
    return dict(p.split("=", 1) for p in pairs)


def _same(given: str, value) -> bool:
    text = value_text(value)
    if text == NOT_APPLICABLE or given.strip().lower() == text.lower():
        return True
    try:
        return float(given) == float(text)
    except ValueError:
        return False


def find_baseline(groups: pd.DataFrame, axes: list[str], baseline: str | None) -> str:
    """The label of the baseline group: the one group whose settings match ``baseline``.
    Default: ``norm=none`` when it names one group, else the first group in label order."""
    labels = list(groups["group"])
    if baseline is None:
        if "norm.name" in axes:
            none = groups.index[groups["config.norm.name"].map(value_text) == "none"]
            if len(none) == 1:
                return groups.loc[none[0], "group"]
        return sorted(labels)[0]
    wanted = parse_baseline(baseline)
    keys = {short(k): k for k in axes}
    for name in wanted:
        if name not in keys and name not in axes:
            raise UsageError(f"--baseline {baseline}: {name} is not a grouping key; allowed: "
                             f"{', '.join(keys) or '(no grouping keys: there is one group)'}")
    match = np.ones(len(groups), dtype=bool)
    for name, value in wanted.items():
        key = keys.get(name, name)
        match &= groups[f"config.{key}"].map(lambda v, value=value: _same(value, v)).to_numpy()
    found = [label for label, m in zip(labels, match, strict=True) if m]
    if len(found) != 1:
        what = "matches no group" if not found else f"matches {len(found)} groups ({'; '.join(found)})"
        raise UsageError(f"--baseline {baseline}: {what}; allowed: one of {'; '.join(sorted(labels))}")
    return found[0]


def quantities(metric: str) -> list[str]:
    """The summary numbers a table shows: the usual ones, and ``metric`` if not among them."""
    return list(QUANTITIES) + ([metric] if metric not in QUANTITIES else [])


def _per_seed(done: pd.DataFrame, metric: str) -> dict[str, pd.Series]:
    """Each group's completed values of ``metric``, indexed by seed (finite values only)."""
    seed = done["config.seed"] if "config.seed" in done else pd.Series(range(len(done)), index=done.index)
    values = done.assign(_seed=seed)[["group", "_seed", metric]].dropna(subset=[metric])
    return {g: d.set_index("_seed")[metric] for g, d in values.groupby("group")}


def compare(x: pd.Series, base: pd.Series, paired: bool) -> stats.Difference:
    """``x`` minus ``base`` (values by seed): paired when asked and both hold the same seeds."""
    same_seeds = len(x) >= 2 and x.index.is_unique and base.index.is_unique and set(x.index) == set(base.index)
    if paired and same_seeds:
        return stats.paired(x.sort_index().to_numpy(), base.sort_index().to_numpy())
    return stats.welch(x.to_numpy(), base.to_numpy())


def summarize(runs: pd.DataFrame, axes: list[str], metric: str, baseline: str | None,
              paired: bool = False) -> tuple[pd.DataFrame, str]:
    """The table (one row per group, numbers as numbers) and the baseline group's label.
    ``runs`` must have a ``group`` column (group_labels)."""
    # .copy(): groupby's first() gives a block per column, which reset_index would warn about
    settings = runs.groupby("group", sort=True)[[f"config.{k}" for k in axes]].first().copy().reset_index()
    base = find_baseline(settings, axes, baseline)
    counts = pd.crosstab(runs["group"], runs["status"]).reindex(columns=list(STATUSES), fill_value=0)
    indexed = settings.set_index("group")  # once: per key it would cost a copy of every key's column (K x K)
    table = pd.DataFrame({short(k): indexed[f"config.{k}"].map(value_text) for k in axes}, index=indexed.index)
    table["runs"] = runs.groupby("group").size()
    table["seeds (completed)"] = counts["completed"]
    for status in STATUSES[1:]:
        table[status] = counts[status]
    done = runs[runs["status"] == "completed"]
    for q in quantities(metric):
        if q == "train_eval_gap" and not runs[q].notna().any():
            continue  # not recorded by any run
        if q == "steps_to_target":
            table["reached target"] = done.groupby("group")[q].count().reindex(table.index, fill_value=0)
        by_group = _per_seed(done, q)
        cols = [f"{METRICS[q].label} {s}" for s in ("mean", "std", "CI low", "CI high")]
        values = [stats.mean_ci(by_group.get(g, pd.Series(dtype=float)).to_numpy())[:4] for g in table.index]
        table[cols] = pd.DataFrame(values, index=table.index, columns=cols)
        table[cols[2:]] = table[cols[2:]].clip(*METRICS[q].bounds)  # the true mean lies there: coverage kept
    table = _differences(table, done, metric, base, paired)
    order = METRICS[metric]
    key = table[f"{order.label} mean"] * (-1 if order.higher_is_better else 1)
    table = table.assign(_key=key).sort_values(["_key"], na_position="last", kind="stable").drop(columns="_key")
    return table.reset_index(), base


def _differences(table: pd.DataFrame, done: pd.DataFrame, metric: str, base: str, paired: bool) -> pd.DataFrame:
    """The columns comparing each group with the baseline."""
    label = METRICS[metric].label
    by_group = _per_seed(done, metric)
    empty = pd.Series(dtype=float)
    diffs = {g: compare(by_group.get(g, empty), by_group.get(base, empty), paired) for g in table.index if g != base}
    rows = pd.DataFrame({g: {"d": d.diff, "lo": d.lo, "hi": d.hi, "p": d.p, "method": d.method,
                             "excludes": ("yes" if d.excludes_zero else "no") if d.known else ""}
                         for g, d in diffs.items()}, index=["d", "lo", "hi", "p", "method", "excludes"]).T
    rows = rows.reindex(table.index).astype(object)
    rows["p Holm"] = stats.holm(rows["p"].to_numpy(dtype=float))
    table[f"Δ {label} vs baseline"] = rows["d"].astype(float)
    table["Δ CI low"], table["Δ CI high"] = rows["lo"].astype(float), rows["hi"].astype(float)
    table["Δ method"] = rows["method"].where(rows["method"].notna(), "")
    table["p"], table["p (Holm)"] = rows["p"].astype(float), rows["p Holm"]
    table["Δ CI excludes 0"] = rows["excludes"].where(rows["excludes"].notna(), "")
    holm_ok = np.isfinite(table["p (Holm)"].to_numpy(dtype=float))
    table["Δ excludes 0 after Holm"] = np.where(holm_ok, np.where(table["p (Holm)"] < stats.ALPHA, "yes", "no"), "")
    table.loc[base, ["Δ CI excludes 0", "Δ excludes 0 after Holm"]] = "baseline"
    base_values = by_group.get(base, empty).to_numpy()
    table["seeds needed (80% power)"] = [
        stats.seeds_needed(d.diff, stats.pooled_std(by_group.get(g, empty).to_numpy(), base_values))
        if g in diffs and (d := diffs[g]).known and not d.excludes_zero else np.nan for g in table.index]
    if METRICS[metric].per_val_sample and done.get("val_samples", pd.Series(dtype=float)).notna().any():
        samples = done.groupby("group")["val_samples"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else np.nan)
        table["validation samples"] = samples.reindex(table.index)
    return table
