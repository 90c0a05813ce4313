"""Run directories -> pandas frames. Reads only files (summary.json, metrics.csv,
histograms.csv), never training code, so it reads runs made by other versions
and on other machines.

A run directory is any directory holding ``summary.json``; a directory that looks like
the start of one (``.hydra/config.yaml`` or ``metrics.csv`` but no summary) is reported
as incomplete. What cannot be read is skipped with one warning each, never a crash.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..rundir import (CSV_COLUMNS, HISTOGRAM_COLUMNS, HISTOGRAMS, METRICS, STATUSES, SUMMARY, SWEEP_CONFIG, flat,
                      shown)

HYDRA = ".hydra"
# the numbers of summary.json the report knows (a run may lack some: older versions)
SUMMARY_NUMBERS = ("final_val_acc", "best_val_acc", "final_val_loss", "best_val_loss", "final_train_loss",
                   "final_train_acc", "train_eval_gap", "steps_to_target", "seconds_to_target", "target_acc",
                   "steps", "epochs_completed", "diverged_at_step", "steps_per_s", "samples_per_s",
                   "train_time_s", "wall_time_s", "precise_bn_gain", "num_params")
# the metrics.csv tags the pictures use; the rest (probes) are not kept in memory
CURVE_TAG_PREFIXES = ("train/loss", "val/acc", "grad_norm/")


@dataclass
class Runs:
    """Everything read: one row per run, and the curves of every run in long form."""

    runs: pd.DataFrame  # run_dir, status, error, overrides, the summary numbers, config.<dotted key>...
    metrics: pd.DataFrame  # run_dir, step, tag, value (curve tags only)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (directory, why)

    @property
    def config_keys(self) -> list[str]:
        return [c.removeprefix("config.") for c in self.runs.columns if c.startswith("config.")]


def latest_sweep(outputs: Path = Path("outputs")) -> Path:
    """The newest directory under ``outputs`` holding Hydra's multirun.yaml (by its mtime)."""
    found = list(outputs.rglob(SWEEP_CONFIG)) if outputs.is_dir() else []
    if not found:
        raise UsageError(f"PATH (none given): no sweep under {outputs}/ (no directory there holds {SWEEP_CONFIG}); "
                         f"allowed: run a sweep (normbench train -m ...) first, or give run directories as PATH")
    return max(found, key=lambda p: (p.stat().st_mtime, str(p))).parent


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


def _first_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def read_summary(run_dir: Path) -> dict:
    path = run_dir / SUMMARY
    if not path.exists():
        raise Skip(f"incomplete: no {SUMMARY} (still running, or stopped before writing it)")
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise Skip(f"corrupt {SUMMARY} ({_first_line(e)})") from e
    if not isinstance(summary, dict) or "status" not in summary:
        raise Skip(f"unknown layout: {SUMMARY} is not a normbench summary (no status)")
    if summary["status"] not in STATUSES:
        raise Skip(f"unknown layout: status {summary['status']!r} in {SUMMARY}; known: {', '.join(STATUSES)}")
    if not isinstance(summary.get("config"), dict):
        raise Skip(f"unknown layout: no config in {SUMMARY}")
    summary.setdefault("overrides", [])
    return summary


def read_metrics(run_dir: Path, status: str) -> pd.DataFrame | None:
    """The run's metrics.csv as read (filtered and checked later, all runs at once). A run
    that never trained (``failed`` before its first step) may have no metrics.csv; any
    other run without one is skipped."""
    path = run_dir / METRICS
    if not path.exists():
        if status == "failed":
            return None
        raise Skip(f"incomplete: no {METRICS} for a run whose status is {status}")
    return _read_csv(path, CSV_COLUMNS)


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """A run's CSV file with exactly ``columns``; raises Skip saying why it cannot be read."""
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as e:
        raise Skip(f"corrupt {path.name}: empty") from e
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise Skip(f"corrupt {path.name} ({_first_line(e)})") from e
    if list(frame.columns) != columns:
        raise Skip(f"unknown layout: {path.name} has columns {', '.join(map(str, frame.columns))}; "
                   f"known: {', '.join(columns)}")
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
    step = pd.to_numeric(m["step"], errors="coerce").to_numpy()
    bad = sorted(set(run[keep & np.isnan(step)]))
    keep &= ~np.isin(run, bad)
    curves = pd.DataFrame({"step": step[keep].astype(np.int64), "tag": tag[keep].to_numpy(),
                           "value": pd.to_numeric(m["value"][keep], errors="coerce").to_numpy(dtype=float),
                           "run_dir": np.asarray(names, dtype=object)[run[keep]]})
    return curves, [names[i] for i in bad]


def load(paths: list[Path]) -> Runs:
    """Every run directory under ``paths``. Raises UsageError when a path does not exist
    or nothing under the paths is a run directory (skipped ones included)."""
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

    rows, frames, names, skipped = [], [], [], []
    for run_dir in dirs:
        name = shown(run_dir)
        try:
            summary = read_summary(run_dir)
            metrics = read_metrics(run_dir, summary["status"])
        except Skip as e:
            skipped.append((name, str(e)))
            continue
        row = {"run_dir": name, "status": summary["status"], "error": summary.get("error"),
               "overrides": " ".join(map(str, summary.get("overrides") or []))}
        for key in SUMMARY_NUMBERS:
            value = summary.get(key)
            row[key] = value if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan
        # lists as their text ([32, 64]), so that they can be grouped on
        row.update({f"config.{k}": str(v) if isinstance(v, (list, tuple)) else v
                    for k, v in flat(summary["config"]).items()})
        rows.append(row)
        if metrics is not None:
            frames.append(metrics)
            names.append(name)
    metrics, bad = _curves(frames, names)
    if bad:
        skipped += [(name, f"corrupt {METRICS}: a step that is not a number") for name in bad]
        skipped.sort()
        rows = [r for r in rows if r["run_dir"] not in set(bad)]
    runs = pd.DataFrame(rows)
    for column in [c for c in runs.columns if c.startswith("config.")]:  # values as the config has them
        runs[column] = pd.Series([r.get(column) for r in rows], index=runs.index, dtype=object)
    if runs.empty:
        runs = pd.DataFrame(columns=["run_dir", "status", "error", "overrides", *SUMMARY_NUMBERS])
    for key in SUMMARY_NUMBERS:
        runs[key] = pd.to_numeric(runs[key], errors="coerce").astype(float)
    return Runs(runs=runs, metrics=metrics, skipped=skipped)


def read_histograms(run_dir: str) -> pd.DataFrame | None:
    """A run's activation histograms (``act/<block>/...``) at the last step each was
    recorded, or None when the run recorded none (probes off). Raises Skip when its
    histograms.csv cannot be read."""
    path = Path(run_dir) / HISTOGRAMS
    if not path.exists():
        return None
    h = _read_csv(path, HISTOGRAM_COLUMNS)
    numbers = h[["step", "left", "right", "count"]].apply(pd.to_numeric, errors="coerce")
    if numbers.isna().any().any():
        raise Skip(f"corrupt {HISTOGRAMS}: a step, bin edge or count that is not a number")
    h = h.assign(**numbers, tag=h["tag"].astype(str))
    h = h[h["tag"].str.startswith("act/")]
    if h.empty:
        return None
    last = h.groupby("tag")["step"].transform("max")
    return h[h["step"] == last].reset_index(drop=True)
