"""Run directories -> pandas frames. Reads only files (summary.json through
``rundir.read_summary``, metrics.csv, histograms.csv), never training code, so it reads
runs made by other versions and on other machines; and reads them as data: a hostile or
damaged file is skipped with its reason, never run, never a crash.

A run directory is any directory holding ``summary.json``; a directory that looks like
the start of one (``.hydra/config.yaml`` or ``metrics.csv`` but no summary) is reported
as incomplete. Settings a run's norm ignores read ``n/a`` (``identity.canonical``), and runs
that are the same experiment (same settings and seed, e.g. ``norm=none`` with
``placement=pre`` and ``post``, or one sweep reported twice) count once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UsageError, described
from ..files import MAX_CSV_BYTES, BadFile, open_regular
from ..identity import canonical
from ..rundir import (CSV_COLUMNS, HISTOGRAM_COLUMNS, HISTOGRAMS, METRICS, NUMBERS, STATUSES,
                      SUMMARY, SWEEP_CONFIG, Unreadable, flat, is_management, read_summary, shown, sweeps)

HYDRA = ".hydra"
# the metrics.csv tags the pictures use; the rest (probes) are not kept in memory
CURVE_TAG_PREFIXES = ("train/loss", "val/acc", "grad_norm/", "landscape/")
LARGEST = 1e30  # a summary number beyond this (or not finite) is left out of the means, with a warning
STATUS_RANK = {s: i for i, s in enumerate(STATUSES)}  # which of two identical runs is kept: finished first


@dataclass
class Runs:
    """Everything read: one row per run, and the curves of every run in long form."""

    runs: pd.DataFrame  # run_dir, status, error, overrides, the summary numbers, config.<dotted key>...
    metrics: pd.DataFrame  # run_dir, step, tag, value (curve tags only)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (directory, why)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (directory, the run it repeats)
    dropped: list[tuple[str, str, float]] = field(default_factory=list)  # (directory, number, its value)

    @property
    def config_keys(self) -> list[str]:
        return [c.removeprefix("config.") for c in self.runs.columns if c.startswith("config.")]


def latest_sweep(outputs: Path = Path("outputs")) -> Path:
    """The newest directory under ``outputs`` holding Hydra's multirun.yaml."""
    found = sweeps(outputs)
    if not found:
        raise UsageError(f"PATH (none given): no sweep under {outputs}/ (no directory there holds {SWEEP_CONFIG}); "
                         f"allowed: run a sweep (normbench train -m ...) first, or give run directories as PATH")
    return found[0]


def candidate_dirs(root: Path) -> list[Path]:
    """Directories under ``root`` (itself included) that are, or look like the start of,
    a run directory. Nothing inside a run directory (or .hydra/) is looked into further."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        names = set(filenames)
        if SUMMARY in names or METRICS in names or (HYDRA in dirnames and Path(dirpath, HYDRA, "config.yaml").exists()):
            found.append(Path(dirpath))
            dirnames.clear()
            continue
        dirnames[:] = sorted(d for d in dirnames if d != HYDRA)
    return found


class Skip(Exception):
    """A run directory that cannot be used; its message says why, in a few words."""


def read_metrics(run_dir: Path, status: str) -> pd.DataFrame | None:
    """The run's metrics.csv as read (filtered and checked later, all runs at once). A run
    that never trained (``failed`` before its first step) may have no metrics.csv; any
    other run without one is skipped."""
    path = run_dir / METRICS
    if not path.exists() and not path.is_symlink():
        if status == "failed":
            return None
        raise Skip(f"incomplete: no {METRICS} for a run whose status is {status}")
    return read_csv(path, CSV_COLUMNS)


def read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """A run's CSV file with exactly ``columns``; raises Skip saying why it cannot be read
    (a FIFO, a device, a symlink out of the run directory or a file over MAX_CSV_BYTES is
    not opened: ``files.open_regular``)."""
    try:
        with open_regular(path, MAX_CSV_BYTES, within=path.parent) as f:
            frame = pd.read_csv(f)
    except BadFile as e:
        raise Skip(f"unknown layout: {e}") from None
    except pd.errors.EmptyDataError as e:
        raise Skip(f"corrupt {path.name}: empty") from e
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, MemoryError) as e:
        raise Skip(f"corrupt {path.name} ({described(e)})") from e
    if list(frame.columns) != columns:
        shown_columns = ", ".join(str(c)[:40] for c in frame.columns[:10])
        raise Skip(f"unknown layout: {path.name} has columns {shown_columns}; known: {', '.join(columns)}")
    return frame


def _curves(frames: list[pd.DataFrame], names: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The curve tags of every run's metrics.csv in one long frame (one concat, then
    vectorised filtering and number checks), and the runs whose steps are not numbers."""
    if not frames:
        return pd.DataFrame({"step": pd.Series(dtype=np.int64), "tag": pd.Series(dtype=str),
                             "value": pd.Series(dtype=float), "run_dir": pd.Series(dtype=str)}), []
    run = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    m = pd.concat(frames, ignore_index=True)
    tag = m["tag"].astype(str)
    keep = tag.str.startswith(CURVE_TAG_PREFIXES).to_numpy(dtype=bool, copy=True)
    step = pd.to_numeric(m["step"], errors="coerce").to_numpy(dtype=float)
    bad = sorted(set(run[keep & ~np.isfinite(step)]))
    keep &= ~np.isin(run, bad)
    curves = pd.DataFrame({"step": step[keep].astype(np.int64), "tag": tag[keep].to_numpy(),
                           "value": pd.to_numeric(m["value"][keep], errors="coerce").to_numpy(dtype=float),
                           "run_dir": np.asarray(names, dtype=object)[run[keep]]})
    return curves, [names[i] for i in bad]


def _row(name: str, summary) -> tuple[dict, list[tuple[str, float]]]:
    """One run's row: its numbers (those not finite or beyond LARGEST left out, and named)
    and its settings, those its norm ignores as ``n/a``."""
    row = {"run_dir": name, "status": summary.status, "error": summary.error, "sites": site_names(summary.sites),
           "overrides": " ".join(map(str, summary.overrides)),
           "versions": ", ".join(f"{k} {v}" for k, v in summary.versions.items())
           if isinstance(summary.versions, dict) else ""}
    dropped = []
    for key in NUMBERS:
        value = getattr(summary, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = np.nan
        elif not np.isfinite(value) or abs(value) > LARGEST:
            dropped.append((key, float(value)))
            value = np.nan
        row[key] = value
    # lists as their text ([32, 64]), so that they can be grouped on
    row.update({f"config.{k}": str(v) if isinstance(v, (list, tuple, dict)) else v
                for k, v in flat(canonical(summary.config)).items()})
    return row, dropped


def site_names(sites) -> tuple[str, ...] | None:
    """The names of a run's norm sites in the model's order, from summary.json's ``sites``
    (None for a run made before they were recorded, or a list that is not one)."""
    if not isinstance(sites, list):
        return None
    names = tuple(s.get("name") for s in sites if isinstance(s, dict))
    return names if names and all(isinstance(n, str) and "/" not in n for n in names) else None


def _identity(row: dict) -> str:
    """What makes two runs the same experiment: every setting but how they were managed."""
    settings = {k: row[k] for k in sorted(row) if k.startswith("config.")
                and not is_management(k.removeprefix("config."))}
    return json.dumps(settings, sort_keys=True, default=str)


def _dedupe(rows: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """One row per experiment: a finished run before an unfinished one, then by directory."""
    kept: dict[str, dict] = {}
    duplicates = []
    for row in sorted(rows, key=lambda r: (STATUS_RANK[r["status"]], r["run_dir"])):
        first = kept.setdefault(_identity(row), row)
        if first is not row:
            duplicates.append((row["run_dir"], first["run_dir"]))
    first = {id(r) for r in kept.values()}
    return [r for r in rows if id(r) in first], sorted(duplicates)


def _directories(paths: list[Path]) -> list[Path]:
    dirs: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"PATH {path}: no such file or directory; allowed: a run directory or a directory "
                             f"holding runs (a sweep)")
        if not path.is_dir():
            raise UsageError(f"PATH {path}: not a directory; allowed: a run directory or a directory holding runs")
        dirs += candidate_dirs(path)
    dirs = sorted(set(d.resolve() for d in dirs))
    if not dirs:
        raise UsageError(f"PATH {' '.join(map(str, paths))}: no run directories under it (no {SUMMARY} found); "
                         f"allowed: directories made by normbench train")
    return dirs


def load(paths: list[Path]) -> Runs:
    """Every run directory under ``paths``. Raises UsageError when a path does not exist
    or nothing under the paths is a run directory (skipped ones included)."""
    rows, frames, skipped, dropped = [], {}, [], []
    for run_dir in _directories(paths):
        name = shown(run_dir)
        try:
            try:
                summary = read_summary(run_dir)
            except Unreadable as e:
                raise Skip(str(e)) from None
            metrics = read_metrics(run_dir, summary.status)
        except Skip as e:
            skipped.append((name, str(e)))
            continue
        row, bad_numbers = _row(name, summary)
        rows.append(row)
        dropped += [(name, key, value) for key, value in bad_numbers]
        if metrics is not None:
            frames[name] = metrics
    rows, duplicates = _dedupe(rows)
    kept = {r["run_dir"] for r in rows}
    frames = {name: f for name, f in frames.items() if name in kept}
    metrics, bad = _curves(list(frames.values()), list(frames))
    bad = set(bad)
    if bad:
        skipped += [(name, f"corrupt {METRICS}: a step that is not a number") for name in sorted(bad)]
        skipped.sort()
        rows = [r for r in rows if r["run_dir"] not in bad]
    return Runs(runs=_frame(rows), metrics=metrics, skipped=skipped, duplicates=duplicates,
                dropped=[d for d in dropped if d[0] in kept and d[0] not in bad])


def _frame(rows: list[dict]) -> pd.DataFrame:
    """One row per run; built column by column in one go (a frame grown a column at a time
    costs a copy of every column per column: quadratic in the config keys)."""
    if not rows:
        return pd.DataFrame(columns=["run_dir", "status", "error", "overrides", *NUMBERS]).astype(
            {key: float for key in NUMBERS})
    names = list(dict.fromkeys(k for r in rows for k in r))
    columns = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name in NUMBERS:
            columns[name] = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype(float)
        elif name.startswith("config."):  # values as the config has them
            columns[name] = pd.Series(values, dtype=object)
        else:
            columns[name] = pd.Series(values)
    for key in NUMBERS:
        columns.setdefault(key, pd.Series(np.nan, index=range(len(rows)), dtype=float))
    return pd.DataFrame(columns)


def read_histograms(run_dir: str) -> pd.DataFrame | None:
    """A run's activation histograms (``act/<block>/...``) at the last step each was
    recorded, or None when the run recorded none (probes off). Raises Skip when its
    histograms.csv cannot be read."""
    path = Path(run_dir) / HISTOGRAMS
    if not path.exists() and not path.is_symlink():
        return None
    h = read_csv(path, HISTOGRAM_COLUMNS)
    numbers = h[["step", "left", "right", "count"]].apply(pd.to_numeric, errors="coerce")
    if numbers.isna().any().any() or not np.isfinite(numbers.to_numpy(dtype=float)).all():
        raise Skip(f"corrupt {HISTOGRAMS}: a step, bin edge or count that is not a number")
    h = h.assign(**numbers, tag=h["tag"].astype(str))
    h = h[h["tag"].str.startswith("act/")]
    if h.empty:
        return None
    last = h.groupby("tag")["step"].transform("max")
    return h[h["step"] == last].reset_index(drop=True)
