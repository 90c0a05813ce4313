"""The report's table as text for people: ``mean ± std [95% CI]`` in one cell, the
difference to the baseline with its interval, its p-values and the seeds it would need;
as a Markdown pipe table; and CSV files that a spreadsheet opens without running any
cell (a cell of text starting with ``=``, ``+``, ``-`` or ``@`` is prefixed with ``'``)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import METRICS
from .stats import MAX_SEEDS
from .table import quantities, short


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}" if digits == 0 else f"{value:.{digits}f}"


def cell(mean: float, std: float, lo: float, hi: float, digits: int) -> str:
    """``0.9722 ± 0.0051 [0.9667, 0.9778]``; one value: ``0.9722 (one run)``; values that
    all agree: ``0.9722 ± 0.0000 (seeds agree: no interval)``; none: ``-``."""
    if not np.isfinite(mean):
        return "-"
    if not np.isfinite(std):
        return f"{_number(mean, digits)} (one run)"
    text = f"{_number(mean, digits)} ± {_number(std, digits)}"
    if np.isfinite(lo):
        return text + f" [{_number(lo, digits)}, {_number(hi, digits)}]"
    return text + " (seeds agree: no interval)"


def p_text(p: float) -> str:
    if not np.isfinite(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def seeds_text(n: float) -> str:
    if np.isnan(n):
        return "-"
    return f">{MAX_SEEDS:,}" if math.isinf(n) else f"{int(n)} per group"


def delta_text(d: float, lo: float, hi: float, digits: int, agree: bool) -> str:
    """``+0.0231 [0.0130, 0.0333]``; without an interval, why."""
    if not np.isfinite(d):
        return "-"
    text = ("+" if d >= 0 else "") + _number(d, digits)
    if np.isfinite(lo):
        return text + f" [{_number(lo, digits)}, {_number(hi, digits)}]"
    return text + (" (seeds agree: no interval)" if agree else " (too few runs)")


def samples_text(d: float, n: float) -> str:
    """A difference of accuracies as validation samples: ``+1 of 360``."""
    if not (np.isfinite(d) and np.isfinite(n)) or n <= 0:
        return "-"
    count = d * n
    shown = f"{count:+.0f}" if abs(count - round(count)) < 0.05 else f"{count:+.1f}"
    return f"{shown} of {int(n)}"


def readable(table: pd.DataFrame, axes: list[str], metric: str, compact: bool = False) -> pd.DataFrame:
    """The table as text cells. ``compact``: only the chosen metric, the comparison with
    the baseline and the counts (what the terminal shows)."""
    out = pd.DataFrame({short(k): table[short(k)] for k in axes}) if axes else pd.DataFrame(
        {"group": table["group"]})
    out["seeds"] = table["seeds (completed)"].astype(str) + " of " + table["runs"].astype(str)
    if not compact:
        out["diverged/failed/interrupted"] = (table["diverged"].astype(str) + "/" + table["failed"].astype(str)
                                              + "/" + table["interrupted"].astype(str))
    for q in [metric] if compact else quantities(metric):
        m = METRICS[q]
        if f"{m.label} mean" not in table:
            continue
        if q == "steps_to_target" and not compact:
            out["reached target"] = table["reached target"].astype(str)
        cols = [table[f"{m.label} {s}"].to_numpy(dtype=float) for s in ("mean", "std", "CI low", "CI high")]
        out[f"{m.label}: mean ± std [95% CI]"] = [cell(*v, m.digits) for v in zip(*cols, strict=True)]
    m = METRICS[metric]
    d = table[f"Δ {m.label} vs baseline"].to_numpy(dtype=float)
    lo, hi = table["Δ CI low"].to_numpy(dtype=float), table["Δ CI high"].to_numpy(dtype=float)
    agree = table[f"{m.label} std"].to_numpy(dtype=float) == 0
    out[f"Δ {m.label} vs baseline [95% CI]"] = [delta_text(x, a, b, m.digits, s)
                                                for x, a, b, s in zip(d, lo, hi, agree, strict=True)]
    if "validation samples" in table:
        out["Δ in val samples"] = [samples_text(x, n) for x, n in zip(d, table["validation samples"], strict=True)]
    if not compact:
        out["method"] = table["Δ method"].replace("", "-")
    out["p"] = [p_text(p) for p in table["p"]]
    out["p (Holm)"] = [p_text(p) for p in table["p (Holm)"]]
    out["CI excludes 0"] = table["Δ CI excludes 0"].replace("", "-")
    out["after Holm"] = table["Δ excludes 0 after Holm"].replace("", "-")
    out["seeds for 80% power"] = [seeds_text(n) for n in table["seeds needed (80% power)"]]
    return out


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
