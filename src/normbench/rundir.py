"""The files normbench adds to a run directory (Hydra owns the directory and .hydra/).

Both writers are atomic: they write a temporary file beside the target, flush it to
disk, then ``os.replace`` it, so a reader (or a crash) sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import UsageError

SUMMARY = "summary.json"
METRICS = "metrics.csv"
HISTOGRAMS = "histograms.csv"
CHECKPOINT = "checkpoint.pt"
STATUSES = ("completed", "diverged", "failed", "interrupted")
CSV_COLUMNS = ["step", "epoch", "tag", "value", "wall_time"]  # metrics.csv
HISTOGRAM_COLUMNS = ["step", "epoch", "tag", "left", "right", "count"]  # histograms.csv
SWEEP_CONFIG = "multirun.yaml"  # Hydra's record of a sweep, in its directory


def flat(config: dict, prefix: str = "") -> dict:
    """A nested config as ``{"model.depth": 3, "norm.name": "bn", ...}``."""
    out: dict = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + str(key)] = value
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write: Callable[[Any], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode any new file gets
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def shown(path: Path, base: Path | None = None) -> str:
    """A path as the user would type it: relative to ``base`` (the working directory) when
    inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path(base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def remove_empty_dirs(path: Path) -> None:
    """Remove ``path`` and the folders above it (the dated ones Hydra made) while they are
    empty, up to the working directory, never outside it."""
    cwd = Path.cwd().resolve()
    for d in [path.resolve(), *path.resolve().parents]:
        if d == cwd or cwd not in d.parents:
            break
        try:
            d.rmdir()
        except OSError:
            break


def write_summary(run_dir: Path, summary: dict) -> None:
    assert summary.get("status") in STATUSES, summary.get("status")
    text = json.dumps(summary, indent=2, sort_keys=False, allow_nan=False) + "\n"
    _atomic(run_dir / SUMMARY, lambda f: f.write(text.encode()))


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """``state`` holds only tensors, numbers, strings and containers of them, so it
    loads with ``torch.load(..., weights_only=True)``."""
    import torch

    _atomic(run_dir / CHECKPOINT, lambda f: torch.save(state, f))


CHECKPOINT_KEYS = ("model", "optimizer", "step", "epoch", "rng", "config")
# keys added to the config since a checkpoint may have been made: absent means these values
ADDED_KEYS = {"amp": "none", "channels_last": False, "compile": False, "threads": None, "jobs_per_gpu": 1}


def checkpoint_path(path: Path) -> Path:
    """The checkpoint a user named: a run directory's checkpoint.pt, or the file itself."""
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT).is_file():
            raise UsageError(f"{path}: no {CHECKPOINT} in this directory; allowed: a run directory that kept "
                             f"one (checkpoint=true, the default), or a checkpoint file")
        return path / CHECKPOINT
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory; allowed: a run directory or a checkpoint file")
    return path


def load_checkpoint(path: Path) -> dict:
    """A normbench checkpoint, loaded on the CPU with ``torch.load(weights_only=True)``: a
    file that would need to unpickle Python objects (which can run code) is refused.
    Every problem is a UsageError of one line."""
    import pickle

    import torch

    path = checkpoint_path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message: a paragraph on weights_only, then what it would not load
        globals_ = [line.strip() for line in str(e).splitlines() if "GLOBAL" in line]
        if globals_:  # a pickled object: loading it would call that function
            raise UsageError(f"{path}: refused: it holds pickled Python objects, which could run code when "
                             f"loaded; normbench loads checkpoints with torch.load(weights_only=True) "
                             f"({globals_[0].rstrip('.')})") from e
        raise UsageError(f"{path}: not a readable checkpoint (corrupt, truncated or not a PyTorch file)") from e
    except Exception as e:  # torch.load's errors for a file that is not a readable checkpoint vary
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"{path}: not a readable checkpoint (corrupt, truncated or not a PyTorch file): "
                         f"{type(e).__name__}: {first}") from e
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise UsageError(f"{path}: not a normbench checkpoint: no {', '.join(missing)}; allowed: the "
                         f"{CHECKPOINT} of a normbench run")
    if isinstance(state["config"], dict):  # a checkpoint of an older normbench: the keys it lacks
        state["config"] = {**ADDED_KEYS, **state["config"]}
    return state


def keep_rows_up_to(path: Path, step: int, columns: int) -> None:
    """Resuming at ``step``: keep the rows of a CSV log written up to and including that
    step (rows after it belong to the part of the run being redone; a torn last line,
    from a killed process, is dropped). At step 0 nothing is kept: the step-0 probes are
    measured again."""
    import csv
    import io

    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if step > 0 and len(r) == columns and r[0].isdigit() and int(r[0]) <= step]
    out = io.StringIO()
    csv.writer(out).writerows(kept)
    _atomic(path, lambda f: f.write(out.getvalue().encode()))
