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

SUMMARY = "summary.json"
METRICS = "metrics.csv"
HISTOGRAMS = "histograms.csv"
CHECKPOINT = "checkpoint.pt"
STATUSES = ("completed", "diverged", "failed", "interrupted")


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


def write_summary(run_dir: Path, summary: dict) -> None:
    assert summary.get("status") in STATUSES, summary.get("status")
    text = json.dumps(summary, indent=2, sort_keys=False, allow_nan=False) + "\n"
    _atomic(run_dir / SUMMARY, lambda f: f.write(text.encode()))


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """``state`` holds only tensors, numbers, strings and containers of them, so it
    loads with ``torch.load(..., weights_only=True)``."""
    import torch

    _atomic(run_dir / CHECKPOINT, lambda f: torch.save(state, f))
