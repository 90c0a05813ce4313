"""Runs -> one row per configuration group: counts by status, mean, standard deviation
and bootstrap interval of each result over the completed runs, and the difference to a
baseline group with its own interval.

Groups are built from the settings that vary, read from each run's resolved config
(``norm.name``, ``placement``, ...), never from directory names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..rundir import STATUSES
from . import stats

# settings that never change a result: not grouping axes by default
NOT_AXES = ("seed", "resume", "progress", "checkpoint")


@dataclass(frozen=True)
class Metric:
    label: str  # readable column name
    higher_is_better: bool | None  # None: sorted ascending, no better or worse
    digits: int  # decimals shown


# summary.json's numbers a report can be about (--metric); the table shows QUANTITIES
METRICS = {
    "final_val_acc": Metric("final val acc", True, 4),
    "best_val_acc": Metric("best val acc", True, 4),
    "final_val_loss": Metric("final val loss", False, 4),
    "best_val_loss": Metric("best val loss", False, 4),
    "final_train_loss": Metric("final train loss", False, 4),
    "final_train_acc": Metric("final train acc", True, 4),
    "train_eval_gap": Metric("train-eval gap", None, 4),
    "steps_to_target": Metric("steps to target (runs reaching it)", False, 0),
    "seconds_to_target": Metric("seconds to target (runs reaching it)", False, 2),
    "steps_per_s": Metric("steps/s", True, 1),
    "samples_per_s": Metric("samples/s", True, 0),
    "train_time_s": Metric("train time (s)", False, 2),
    "precise_bn_gain": Metric("precise BN gain", True, 4),
}
QUANTITIES = ("final_val_acc", "best_val_acc", "steps_to_target", "seconds_to_target", "final_train_loss",
              "train_eval_gap")


def short(key: str) -> str:
    """A config key as users type it: ``norm.name`` -> ``norm`` (the group's option)."""
    return key.removesuffix(".name") if key.endswith(".name") else key


def resolve_axes(runs: pd.DataFrame, config_keys: list[str], by: list[str] | None) -> list[str]:
    """The dotted config keys to group by: those given (``norm`` meaning ``norm.name``), or
    by default every key whose value differs between runs, but for NOT_AXES."""
    if by is None:
        text = {k: runs[f"config.{k}"].map(value_text) for k in config_keys}
        varying = [k for k in config_keys if k not in NOT_AXES and text[k].nunique() > 1]
        # a group's own keys (norm.momentum, ...) that change only with its option (norm.name,
        # e.g. absent for norm=none) say nothing the option does not
        return [k for k in varying
                if not (k.rpartition(".")[0] and (name := k.rpartition(".")[0] + ".name") in varying and name != k
                        and text[k].groupby(text[name]).nunique().max() <= 1)]
    axes = []
    for name in by:
        key = name if name in config_keys else f"{name}.name" if f"{name}.name" in config_keys else None
        if key is None:
            allowed = ", ".join(sorted(set(map(short, config_keys))))
            raise UsageError(f"--by {name}: not a config key of these runs; allowed: {allowed}")
        axes.append(key)
    return list(dict.fromkeys(axes))


def value_text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def group_labels(runs: pd.DataFrame, axes: list[str]) -> pd.Series:
    """``norm=bn placement=pre`` for each run; ``all runs`` when nothing is grouped on."""
    if not axes:
        return pd.Series("all runs", index=runs.index)
    parts = [f"{short(k)}=" + runs[f"config.{k}"].map(value_text) for k in axes]
    label = parts[0]
    for p in parts[1:]:
        label = label + " " + p
    return label


def parse_baseline(text: str) -> dict[str, str]:
    """``norm=none placement=pre`` (or with commas) -> {"norm": "none", "placement": "pre"}."""
    pairs = [p for p in re.split(r"[\s,]+(?=[\w.]+=)", text.strip()) if p]
    if not pairs or any("=" not in p for p in pairs):
        raise UsageError(f"--baseline {text}: not key=value; allowed: settings of one group, e.g. "
                         f"--baseline norm=none")
    return dict(p.split("=", 1) for p in pairs)


def _same(given: str, value) -> bool:
    text = value_text(value)
    if given.strip().lower() == text.lower():
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


def summarize(runs: pd.DataFrame, axes: list[str], metric: str, baseline: str | None,
              resamples: int = stats.RESAMPLES, seed: int = stats.SEED) -> tuple[pd.DataFrame, str]:
    """The table (one row per group, numbers as numbers) and the baseline group's label.
    ``runs`` must have a ``group`` column (group_labels)."""
    settings = runs.groupby("group", sort=True)[[f"config.{k}" for k in axes]].first().reset_index()
    base = find_baseline(settings, axes, baseline)

    counts = pd.crosstab(runs["group"], runs["status"]).reindex(columns=list(STATUSES), fill_value=0)
    table = settings.set_index("group")[[]].copy()
    for k in axes:
        table[short(k)] = settings.set_index("group")[f"config.{k}"].map(value_text)
    table["runs"] = runs.groupby("group").size()
    table["seeds (completed)"] = counts["completed"]
    for status in STATUSES[1:]:
        table[status] = counts[status]

    done = runs[runs["status"] == "completed"]
    by_group = {g: d for g, d in done.groupby("group")}
    empty = done.iloc[:0]
    for q in _quantities(metric):
        if q == "train_eval_gap" and not runs[q].notna().any():
            continue  # not recorded by any run
        label = METRICS[q].label
        if q == "steps_to_target":
            table["reached target"] = done.groupby("group")[q].count().reindex(table.index, fill_value=0)
        cols = [f"{label} mean", f"{label} std", f"{label} CI low", f"{label} CI high"]
        values = [stats.mean_ci(by_group.get(g, empty)[q].to_numpy(), resamples, seed=seed, stream=i)[:4]
                  for i, g in enumerate(table.index)]
        table[cols] = pd.DataFrame(values, index=table.index, columns=cols)

    label = METRICS[metric].label
    base_values = by_group.get(base, empty)[metric].to_numpy()
    diffs = [stats.diff_ci(by_group.get(g, empty)[metric].to_numpy(), base_values, resamples, seed=seed,
                           stream=10_000 + i) for i, g in enumerate(table.index)]
    d = pd.DataFrame(diffs, index=table.index, columns=["d", "lo", "hi"])
    d.loc[base, :] = np.nan
    table[f"Δ {label} vs baseline"] = d["d"]
    table["Δ CI low"] = d["lo"]
    table["Δ CI high"] = d["hi"]
    known = d["lo"].notna() & d["hi"].notna()
    excludes = (d["lo"] > 0) | (d["hi"] < 0)
    table["Δ CI excludes 0"] = np.where(known, np.where(excludes, "yes", "no"), "")
    table.loc[base, "Δ CI excludes 0"] = "baseline"

    order = METRICS[metric]
    key = table[f"{label} mean"] * (-1 if order.higher_is_better else 1)
    table = table.assign(_key=key).sort_values(["_key"], na_position="last", kind="stable").drop(columns="_key")
    return table.reset_index(), base


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}" if digits == 0 else f"{value:.{digits}f}"


def cell(mean: float, std: float, lo: float, hi: float, digits: int) -> str:
    """``0.9722 ± 0.0051 [0.9667, 0.9778]``; one value: ``0.9722 (one run)``; none: ``-``."""
    if not np.isfinite(mean):
        return "-"
    if not np.isfinite(std):
        return f"{_number(mean, digits)} (one run)"
    text = f"{_number(mean, digits)} ± {_number(std, digits)}"
    if np.isfinite(lo):
        text += f" [{_number(lo, digits)}, {_number(hi, digits)}]"
    return text


def _quantities(metric: str) -> list[str]:
    """The summary numbers a table shows: the usual ones, and ``metric`` if not among them."""
    return list(QUANTITIES) + ([metric] if metric not in QUANTITIES else [])


def readable(table: pd.DataFrame, axes: list[str], metric: str, compact: bool = False) -> pd.DataFrame:
    """The table as text cells for people: ``mean ± std [95% CI]`` in one cell.
    ``compact``: only the chosen metric, its difference to the baseline and the counts."""
    out = pd.DataFrame({short(k): table[short(k)] for k in axes}) if axes else pd.DataFrame(
        {"group": table["group"]})
    out["seeds"] = table["seeds (completed)"].astype(str) + " of " + table["runs"].astype(str)
    out["diverged/failed/interrupted"] = (table["diverged"].astype(str) + "/" + table["failed"].astype(str) + "/"
                                          + table["interrupted"].astype(str))
    for q in [metric] if compact else _quantities(metric):
        m = METRICS[q]
        if f"{m.label} mean" not in table:
            continue
        if q == "steps_to_target":
            out["reached target"] = table["reached target"].astype(str)
        cols = [table[f"{m.label} {s}"].to_numpy(dtype=float) for s in ("mean", "std", "CI low", "CI high")]
        out[f"{m.label}: mean ± std [95% CI]"] = [cell(*v, m.digits) for v in zip(*cols, strict=True)]
    m = METRICS[metric]
    d = table[f"Δ {m.label} vs baseline"].to_numpy(dtype=float)
    lo, hi = table["Δ CI low"].to_numpy(dtype=float), table["Δ CI high"].to_numpy(dtype=float)
    sign = [("" if not np.isfinite(x) else "+" if x >= 0 else "") for x in d]
    out[f"Δ {m.label} vs baseline [95% CI]"] = [
        "-" if not np.isfinite(x) else s + _number(x, m.digits) + (
            f" [{_number(a, m.digits)}, {_number(b, m.digits)}]" if np.isfinite(a) else " (too few runs)")
        for x, a, b, s in zip(d, lo, hi, sign, strict=True)]
    out["CI excludes 0"] = table["Δ CI excludes 0"].replace("", "-")
    return out


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (GitHub Markdown) of text cells; numbers right-aligned."""
    def esc(v) -> str:
        return str(v).replace("|", "\\|")

    header = [esc(c) for c in frame.columns]
    rows = [[esc(v) for v in row] for row in frame.itertuples(index=False)]
    numeric = [all(re.match(r"^[-+]?[\d,.]", r[i] or "") for r in rows) if rows else False
               for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
