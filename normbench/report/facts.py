"""What the report says about the runs before its table: how many, how they were grouped
and compared, and what was left out and why (warnings on stderr)."""

from __future__ import annotations

import sys

import pandas as pd

from ..identity import NOT_APPLICABLE
from ..rundir import STATUSES, is_management
from .table import short, value_text


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def warn(loaded) -> None:
    """One line per directory that cannot be read and per number left out."""
    for directory, why in loaded.skipped:
        print(f"normbench: warning: skipped {directory}: {why}", file=sys.stderr)
    for directory, key, value in loaded.dropped:
        print(f"normbench: warning: {directory}: {key}={value:g} is not a finite number of a usable size; left out "
              f"of the means", file=sys.stderr)


def facts(loaded, axes: list[str], baseline: str, paired: bool) -> list[str]:
    runs = loaded.runs
    counts = runs["status"].value_counts()
    status = ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
    targets = sorted(runs["target_acc"].dropna().unique())
    target = ", ".join(f"{t:g}" for t in targets) or "not recorded"
    first = plural(len(runs), "run") + f" ({status})"
    if loaded.skipped:
        first += ", " + plural(len(loaded.skipped), "directory", "directories") + " skipped"
    out = [first]
    if loaded.duplicates:
        same, as_ = loaded.duplicates[0]
        out.append(f"{plural(len(loaded.duplicates), 'run')} repeating another's settings and seed (a setting its "
                   f"norm ignores, or the same run found twice) counted once, e.g. {same} = {as_}")
    groups = runs["group"].nunique()
    comparisons = max(0, groups - 1)
    method = "Welch's (paired where both groups hold the same seeds)" if paired else "Welch's"
    out += [f"grouped by: {', '.join(short(a) for a in axes) or '(nothing varies: one group)'}",
            f"baseline: {baseline}",
            f"target accuracy (steps/seconds to target): {target}",
            f"intervals: 95% t-intervals of each mean over its completed runs; the difference to the baseline: "
            f"{method} interval and two-sided test, p Holm-adjusted over {plural(comparisons, 'comparison')}; "
            f"seeds for 80% power: per group, for a difference of the observed size at 5%, from the pooled spread"]
    return out


def shared_settings(runs: pd.DataFrame) -> list[str]:
    """``key=value`` of every setting all runs share (those that say how a run was managed
    left out)."""
    shared = []
    for column in [c for c in runs.columns if c.startswith("config.")]:
        key = column.removeprefix("config.")
        values = runs[column].map(value_text)
        if is_management(key) or values.nunique() != 1 or values.iloc[0] == NOT_APPLICABLE:
            continue
        shared.append(f"{short(key)}={values.iloc[0]}")
    return shared
