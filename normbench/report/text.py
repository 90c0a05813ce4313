"""The report's table as text for people: ``mean ± std [95% CI]`` in one cell (on the log
scale ``geometric mean ×/÷ geometric sd [95% CI]``), the comparison with the baseline with
its interval, its p-values, its verdicts and the conditions they rest on, and the seeds it
would need; as a Markdown pipe table; and CSV files that a spreadsheet opens without
running any cell (a cell of text starting with ``=``, ``+``, ``-`` or ``@`` is prefixed
with ``'``)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .facts import plural
from .metrics import METRICS, SCALES
from .power import MAX_SEEDS
from .stats import LOG
from .table import Summary, quantities, quantity_columns, short
from .verdicts import effect_columns


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}" if digits == 0 else f"{value:.{digits}f}"


def cell(center: float, spread: float, lo: float, hi: float, digits: int, scale: str = "linear") -> str:
    """``0.9722 ± 0.0051 [0.9667, 0.9778]``; on the log scale ``0.0223 ×/÷ 1.55 [0.0105,
    0.0474]`` (the geometric mean times or over the geometric sd); one value: ``0.9722 (one
    run)``; values that all agree: ``0.9722 ± 0.0000 (seeds agree: no interval)``; none: ``-``."""
    if not np.isfinite(center):
        return "-"
    if not np.isfinite(spread):
        return f"{_number(center, digits)} (one run)"
    shown = f"{spread:.2f}" if scale == LOG else _number(spread, digits)
    text = f"{_number(center, digits)} {SCALES[scale].spread_sign} {shown}"
    if np.isfinite(lo):
        return text + f" [{_number(lo, digits)}, {_number(hi, digits)}]"
    return text + " (seeds agree: no interval)"


def p_text(p: float) -> str:
    if not np.isfinite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def seeds_text(n: float) -> str:
    """A rough planning figure: ``~20 per group``."""
    if np.isnan(n):
        return "-"
    return f">{MAX_SEEDS:,}" if math.isinf(n) else f"~{int(n)} per group"


def effect_text(d: float, lo: float, hi: float, digits: int, reason: str, scale: str = "linear") -> str:
    """``+0.0231 [0.0130, 0.0333]``; on the log scale the ratio ``×0.623 [0.412, 0.941]``;
    without an interval, why (``seeds agree``, ``too few runs``)."""
    if not np.isfinite(d):
        return "-"
    if scale == LOG:
        text, bounds = f"×{d:.3f}", (f"{lo:.3f}", f"{hi:.3f}")
    else:
        text, bounds = ("+" if d >= 0 else "") + _number(d, digits), (_number(lo, digits), _number(hi, digits))
    if np.isfinite(lo):
        return text + f" [{bounds[0]}, {bounds[1]}]"
    return text + (" (seeds agree: no interval)" if reason == "seeds agree" else f" ({reason or 'too few runs'})")


def samples_text(d: float, n: float) -> str:
    """A difference of accuracies as validation samples: ``+1 of 360``."""
    if not (np.isfinite(d) and np.isfinite(n)) or n <= 0:
        return "-"
    count = d * n
    shown = f"{count:+.0f}" if abs(count - round(count)) < 0.05 else f"{count:+.1f}"
    return f"{shown} of {int(n)}"


def counts_text(values: int, runs: int, seeds: int) -> str:
    """The values that entered the mean out of the group's runs, and their distinct seeds:
    ``2 of 5 runs, 2 seeds``."""
    return f"{values} of {plural(runs, 'run')}, {plural(seeds, 'seed')}"


def diverged_text(group: pd.Series, base: pd.Series, p: float) -> str:
    """``3 of 5 vs 0 of 5, p 0.167``: diverged runs of those that completed or diverged."""
    if not np.isfinite(p):
        return "-"
    share = [f"{int(r['diverged'])} of {int(r['diverged'] + r['completed'])}" for r in (group, base)]
    return f"{share[0]} vs {share[1]}, p {p_text(p)}"


def readable(summary: Summary, axes: list[str], metric: str, compact: bool = False) -> pd.DataFrame:
    """The table as text cells. ``compact``: only the chosen metric, the comparison with
    the baseline and the counts (what the terminal shows)."""
    table = summary.table
    out = pd.DataFrame({short(k): table[short(k)] for k in axes}) if axes else pd.DataFrame(
        {"group": table["group"]})
    out["seeds"] = [counts_text(*v) for v in zip(table["values"], table["runs"], table["seeds"], strict=True)]
    if not compact:
        out["diverged/failed/interrupted"] = (table["diverged"].astype(str) + "/" + table["failed"].astype(str)
                                              + "/" + table["interrupted"].astype(str))
    for q in [metric] if compact else quantities(metric):
        if q not in summary.scales:
            continue
        m, scale = METRICS[q], summary.scales[q]
        if q == "steps_to_target" and not compact:
            out["reached target"] = table["reached target"].astype(str)
        cols = [table[c].to_numpy(dtype=float) for c in quantity_columns(q, scale)]
        out[cell_column(q, scale)] = [cell(*v, m.digits, scale) for v in zip(*cols, strict=True)]
    _comparison(out, summary, metric, compact)
    return out


def cell_column(q: str, scale: str) -> str:
    """``final val acc: mean ± std [95% CI]``: the name of a result's text column."""
    s = SCALES[scale]
    return f"{METRICS[q].label}: {s.center} {s.spread_sign} {s.spread} [95% CI]"


def answer(frame: pd.DataFrame, summary: Summary, axes: list[str], metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``readable`` table as two, for a page a reader takes in without scrolling
    sideways: the answer (the settings, the seeds, the metric's centre and interval, its
    comparison with the baseline and that comparison's interval, p (Holm), the verdict
    after Holm, and what the verdicts rest on where any is qualified), and the settings
    with every other column."""
    settings = [short(k) for k in axes] if axes else ["group"]
    scale = summary.scales[metric]
    first = [*settings, "seeds", cell_column(metric, scale), effect_columns(metric, scale)["effect"] + " [95% CI]",
             "p (Holm)", "after Holm"]
    if (frame["verdicts rest on"] != "-").any():
        first.append("verdicts rest on")
    return frame[first], frame[settings + [c for c in frame.columns if c not in first]]


def _comparison(out: pd.DataFrame, summary: Summary, metric: str, compact: bool) -> None:
    """The columns comparing each group with the baseline, as text."""
    table, scale, m = summary.table, summary.scales[metric], METRICS[metric]
    names = effect_columns(metric, scale)
    d = table[names["effect"]].to_numpy(dtype=float)
    lo, hi = table[names["lo"]].to_numpy(dtype=float), table[names["hi"]].to_numpy(dtype=float)
    out[names["effect"] + " [95% CI]"] = [effect_text(x, a, b, m.digits, why, scale) for x, a, b, why in zip(
        d, lo, hi, table["no interval because"], strict=True)]
    if "validation samples" in table:
        out["Δ in val samples"] = [samples_text(x, n) for x, n in zip(d, table["validation samples"], strict=True)]
    if not compact:
        out["method"] = table["method"].replace("", "-")
    out["p"] = [p_text(p) for p in table["p"]]
    out["p (Holm)"] = [p_text(p) for p in table["p (Holm)"]]
    null = f"{SCALES[scale].no_effect:g}"
    out[f"CI excludes {null}"] = table[names["excludes"]].replace("", "-")
    out["after Holm"] = table[names["after"]].replace("", "-")
    out["verdicts rest on"] = table["verdicts rest on"].replace("", "-")
    if not compact or summary.divergence_tests:
        base = table.set_index("group").loc[summary.baseline]
        out["diverged vs baseline"] = [diverged_text(row, base, p) for (_, row), p in zip(
            table.iterrows(), table["diverged p (Fisher, Holm)"], strict=True)]
    out["seeds for 80% power (rough)"] = [seeds_text(n) for n in table["seeds for 80% power (rough)"]]


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (GitHub Markdown) of text cells; numbers right-aligned."""
    def esc(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    header = [esc(c) for c in frame.columns]
    rows = [[esc(v) for v in row] for row in frame.itertuples(index=False)]
    numeric = [all(re.match(r"^[-+<>]?[\d,.]", r[i] or "") for r in rows) if rows else False
               for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


FORMULA = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell a spreadsheet would run as a formula, prefixed with ``'``; numbers (and
    text that is a plain number, such as ``-0.5``) stay as they are."""
    if not isinstance(value, str) or not value.startswith(FORMULA):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as CSV, every text cell spreadsheet-safe (column names included)."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(spreadsheet_safe)
    safe.columns = [spreadsheet_safe(str(c)) for c in safe.columns]
    safe.to_csv(path, index=False)
