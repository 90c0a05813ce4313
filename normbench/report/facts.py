"""What the report says about the runs before its table: how many, how they were grouped
and compared, and what was left out and why (warnings on stderr)."""

from __future__ import annotations

import sys

import pandas as pd

from ..inapplicable import NOT_APPLICABLE
from ..rundir import STATUSES, is_management
from .table import short, value_text

METHODS = "intervals: "  # how the line on the methods begins


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


def facts(loaded, axes: list[str], summary, paired: bool, pooled: list[str] = ()) -> list[str]:
    """What the report says before its table: the runs, how they were grouped (and which
    keys that vary each group pools), how they were compared, and the methods
    (``summary``: table.Summary)."""
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
    out.append(f"grouped by: {', '.join(short(a) for a in axes) or '(nothing varies: one group)'}")
    if pooled:
        keys = ", ".join(short(k) for k in pooled)
        out.append(f"pooled: {keys} {'varies' if len(pooled) == 1 else 'vary'} within the groups (not grouped on): "
                   f"each group's runs of one seed are averaged first (on the result's scale), so a group's n is "
                   f"its number of seeds; --by {','.join(short(k) for k in [*axes, *pooled])} compares them apart")
    out += [f"baseline: {summary.baseline}",
            f"target accuracy (steps/seconds to target): {target}",
            _methods(summary, paired, runs["group"].nunique() - 1)]
    if summary.off_log:
        out.append(f"on the linear scale, not the log scale, because a completed run has a value of 0 or below: "
                   f"{', '.join(summary.off_log)}")
    return out


def _methods(summary, paired: bool, others: int) -> str:
    """One line: the intervals, the tests, what Holm's correction counted, the verdicts'
    conditions, and the planning figure."""
    logs = [q for q, s in summary.scales.items() if s == "log"]
    scale = (f" ({', '.join(logs)}: the geometric mean, on the log scale, and the ratio of geometric means)"
             if logs else "")
    family = plural(summary.comparisons, "comparison") + (
        f" (of {others}: those with a p-value)" if summary.comparisons < others else "")
    pairing = " (paired where both groups hold the same seeds)" if paired else ""
    planning = f" over {summary.comparisons} comparisons (Bonferroni)" if summary.comparisons > 1 else ""
    divergence = (f"; diverged runs: Fisher's exact test of each group's share against the baseline's, Holm-adjusted "
                  f"over {plural(summary.divergence_tests, 'test')}" if summary.divergence_tests else "")
    return (f"{METHODS}95% t-intervals of each mean over its completed runs{scale}; the difference to the baseline: "
            f"Welch's interval where both groups hold as many values, Banerjee's (conservative) where they do not"
            f"{pairing}, two-sided; p Holm-adjusted over {family}; a verdict is conditional where runs diverged and "
            f"incomplete where runs failed or were interrupted{divergence}; seeds for 80% power: rough, per group, "
            f"for a difference of the observed size at 5%{planning}, from the pooled spread")


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
