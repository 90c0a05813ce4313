"""Runs -> one row per configuration group: counts by status, and of the values and seeds
behind the metric; the centre, spread and t-interval of each result over the completed
runs (the mean, or on the log scale the geometric mean); and the comparison with a
baseline group (verdicts.py).

Groups are built from the settings that vary, read from each run's resolved config
(``norm.name``, ``placement``, ...), never from directory names; a setting that cannot
change a run's network (``placement`` with ``norm=none``) reads ``n/a`` and is left out
of its group's name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..inapplicable import NOT_APPLICABLE
from ..rundir import RUN_MANAGEMENT, STATUSES
from . import stats
from .metrics import METRICS, QUANTITIES, SCALES
from .verdicts import compare_with_baseline

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


def pooled(runs: pd.DataFrame, config_keys: list[str], axes: list[str]) -> list[str]:
    """The keys that vary between the runs of a group: left out of the grouping (``--by
    norm`` over two placements), so each group pools their values."""
    if runs.empty:
        return []
    out = []
    for k in resolve_axes(runs, config_keys, None):
        if k in axes:
            continue
        text = runs[f"config.{k}"].map(value_text)
        if text[text != NOT_APPLICABLE].groupby(runs["group"]).nunique().max() > 1:
            out.append(k)
    return out


def _seeds(runs: pd.DataFrame) -> pd.Series:
    """Each run's seed (runs without one in their config: each its own)."""
    return runs["config.seed"] if "config.seed" in runs else pd.Series(range(len(runs)), index=runs.index)


def _per_seed(done: pd.DataFrame, metric: str, scale: str = stats.LINEAR) -> dict[str, pd.Series]:
    """Each group's completed values of ``metric`` (finite values only), one per seed: where
    a group holds several runs of a seed (it pools a key that varies, see ``pooled``), their
    mean on the metric's scale (on the log scale the geometric mean), so that a group's n
    is its number of seeds, never its runs."""
    values = done.assign(_seed=_seeds(done))[["group", "_seed", metric]].dropna(subset=[metric])
    if scale == stats.LOG:
        values[metric] = np.log(values[metric].astype(float))
    means = values.groupby(["group", "_seed"])[metric].mean()
    if scale == stats.LOG:
        means = np.exp(means)
    return {g: d.droplevel("group") for g, d in means.groupby(level="group")}


def scale_of(done: pd.DataFrame, q: str) -> str:
    """The scale ``q`` is summarized and compared on: its row's (log for losses, counts and
    times), unless a completed run has a value of 0 or below, which has no logarithm."""
    if METRICS[q].scale == stats.LOG and (done[q].dropna() <= 0).any():
        return stats.LINEAR
    return METRICS[q].scale


def quantity_columns(q: str, scale: str) -> list[str]:
    """``final val acc mean``, ``... std``, ``... CI low``, ``... CI high``; on the log scale
    ``... geometric mean`` and ``... geometric sd`` (a factor)."""
    label, s = METRICS[q].label, SCALES[scale]
    return [f"{label} {s.center}", f"{label} {s.spread}", f"{label} CI low", f"{label} CI high"]


@dataclass
class Summary:
    """The report's table (one row per group, numbers as numbers, best first) and what was
    decided on the way."""
    table: pd.DataFrame
    baseline: str  # the baseline group's label
    scales: dict[str, str]  # each quantity shown: the scale it is on
    off_log: list[str]  # quantities kept on the linear scale because a value is 0 or below
    comparisons: int  # comparisons with a p-value: Holm's family
    divergence_tests: int  # groups whose share of diverged runs was tested against the baseline's


def _counts(runs: pd.DataFrame, table: pd.DataFrame, metric: str) -> None:
    """Runs by status; the values of the metric that enter its mean (the completed runs
    with a finite value), and their distinct seeds."""
    counts = pd.crosstab(runs["group"], runs["status"]).reindex(columns=list(STATUSES), fill_value=0)
    table["runs"] = runs.groupby("group").size()
    for status in STATUSES:
        table[status] = counts[status]
    done = runs[(runs["status"] == "completed") & runs[metric].notna()]
    table["values"] = done.groupby("group").size().reindex(table.index, fill_value=0)
    table["seeds"] = _seeds(done).groupby(done["group"]).nunique().reindex(table.index, fill_value=0)


def summarize(runs: pd.DataFrame, axes: list[str], metric: str, baseline: str | None,
              paired: bool = False) -> Summary:
    """The table and what it rests on. ``runs`` must have a ``group`` column (group_labels)."""
    # .copy(): groupby's first() gives a block per column, which reset_index would warn about
    settings = runs.groupby("group", sort=True)[[f"config.{k}" for k in axes]].first().copy().reset_index()
    base = find_baseline(settings, axes, baseline)
    indexed = settings.set_index("group")  # once: per key it would cost a copy of every key's column (K x K)
    table = pd.DataFrame({short(k): indexed[f"config.{k}"].map(value_text) for k in axes}, index=indexed.index)
    done = runs[runs["status"] == "completed"]
    _counts(runs, table, metric)
    scales = {}
    for q in quantities(metric):
        if q == "train_eval_gap" and q != metric and not runs[q].notna().any():
            continue  # not recorded by any run
        if q == "steps_to_target":
            table["reached target"] = done.groupby("group")[q].count().reindex(table.index, fill_value=0)
        scales[q] = scale_of(done, q)
        by_group = _per_seed(done, q, scales[q])
        cols = quantity_columns(q, scales[q])
        values = [stats.mean_ci(by_group.get(g, pd.Series(dtype=float)).to_numpy(), scale=scales[q])[:4]
                  for g in table.index]
        table[cols] = pd.DataFrame(values, index=table.index, columns=cols)
        table[cols[2:]] = table[cols[2:]].clip(*METRICS[q].bounds)  # the true centre lies there: coverage kept
    by_metric = _per_seed(done, metric, scales[metric])
    table, comparisons, tests = compare_with_baseline(table, by_metric, metric, scales[metric], base, paired)
    if METRICS[metric].per_val_sample and done.get("val_samples", pd.Series(dtype=float)).notna().any():
        samples = done.groupby("group")["val_samples"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else np.nan)
        table["validation samples"] = samples.reindex(table.index)
    order = METRICS[metric]
    key = table[quantity_columns(metric, scales[metric])[0]] * (-1 if order.higher_is_better else 1)
    table = table.assign(_key=key).sort_values(["_key"], na_position="last", kind="stable").drop(columns="_key")
    off_log = [q for q, s in scales.items() if s != METRICS[q].scale]
    return Summary(table.reset_index(), base, scales, off_log, comparisons, tests)
