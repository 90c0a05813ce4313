"""The run directory: the files normbench adds to it, its one summary schema, its lock,
and where sweeps are. Hydra owns the directory's place and ``.hydra/``.

``summary.json`` is written by the run (run.py) and read by the sweep's job wrapper and
tally, by resume and by the report, all through ``Summary`` and ``read_summary``: one
list of fields and statuses, one reading of a file that may come from another version,
another machine, or someone hostile (it is data: nothing in it is run or resolved).

Writes are atomic: a temporary file beside the target, flushed to disk, then
``os.replace``d, so a reader (or a crash) sees the old file or the new one, never half
(``files.atomic_write``).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import UsageError, described, disk_problem
from .files import LOCK, BadFile, atomic_write, check_space, read_bytes, shown

SUMMARY = "summary.json"
METRICS = "metrics.csv"
HISTOGRAMS = "histograms.csv"
CHECKPOINT = "checkpoint.pt"
SWEEP_CONFIG = "multirun.yaml"  # Hydra's record of a sweep, in its directory
STATUSES = ("completed", "diverged", "failed", "interrupted")
FINISHED = ("completed", "diverged")  # a result: never trained again by a resume
CSV_COLUMNS = ["step", "epoch", "tag", "value", "wall_time"]  # metrics.csv
HISTOGRAM_COLUMNS = ["step", "epoch", "tag", "left", "right", "count"]  # histograms.csv
# settings that say how a run was managed, not what it computed: runs that differ only in
# these (and in settings their norm ignores) are the same experiment
RUN_MANAGEMENT = ("resume", "progress", "checkpoint", "threads", "jobs_per_gpu")


def is_management(key: str) -> bool:
    """Whether a dotted config key says how a run was managed (``RUN_MANAGEMENT``)."""
    return key.split(".")[0] in RUN_MANAGEMENT
MAX_SUMMARY_BYTES = 16 * 2**20  # a summary.json beyond this is not one normbench wrote


@dataclass
class Summary:
    """summary.json. Numbers are null where not measured (or not finite); a file from an
    older normbench lacks the newer fields, which read as null."""
    status: str
    error: Optional[str] = None
    run_dir: Optional[str] = None
    overrides: list = field(default_factory=list)
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    config: dict = field(default_factory=dict)  # the resolved config
    versions: dict = field(default_factory=dict)
    final_val_acc: Optional[float] = None
    final_val_loss: Optional[float] = None
    final_train_loss: Optional[float] = None
    final_train_acc: Optional[float] = None
    best_val_acc: Optional[float] = None
    best_val_acc_step: Optional[int] = None
    best_val_loss: Optional[float] = None
    target_acc: Optional[float] = None
    steps_to_target: Optional[int] = None
    samples_to_target: Optional[int] = None  # steps_to_target x batch_size: comparable across batch sizes
    seconds_to_target: Optional[float] = None
    steps: Optional[int] = None  # optimizer steps taken
    epochs_completed: Optional[int] = None  # full passes over the training split
    samples_seen: Optional[int] = None  # training samples the steps took (steps x batch_size)
    epochs_seen: Optional[float] = None  # samples_seen / train_samples: epochs, fractional
    diverged_at_step: Optional[int] = None
    steps_per_s: Optional[float] = None
    samples_per_s: Optional[float] = None
    train_time_s: Optional[float] = None
    wall_time_s: Optional[float] = None
    final_val_acc_train_mode: Optional[float] = None
    train_eval_gap: Optional[float] = None
    final_val_acc_running_stats: Optional[float] = None
    precise_bn_gain: Optional[float] = None
    variance_shift: Optional[dict] = None  # {block: ratio} of each BatchNorm
    variance_shift_precise: Optional[dict] = None
    landscape_loss_range: Optional[float] = None  # probe_landscape=true: each landscape/ tag's mean over the probes
    landscape_grad_change: Optional[float] = None
    landscape_beta: Optional[float] = None
    val_samples: Optional[int] = None  # validation samples behind each accuracy
    train_samples: Optional[int] = None  # samples in the training split
    effective_lr: Optional[float] = None  # lr x (batch_size / base_batch_size)^p (lr_scaling), before the schedule
    num_params: Optional[int] = None
    sites: Optional[list] = None  # the model's norm sites: [{name, block, norm, layer, act, role}] (sites.describe)
    device: Optional[str] = None
    device_name: Optional[str] = None
    threads: Optional[int] = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def as_dict(self) -> dict:
        return finite_json(dataclasses.asdict(self))


FIELDS = tuple(f.name for f in dataclasses.fields(Summary))
# the summary's single numbers (a report can be about any of them)
NUMBERS = tuple(f.name for f in dataclasses.fields(Summary) if f.type in ("Optional[float]", "Optional[int]"))


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float, however deeply nested, replaced by None:
    JSON has no NaN or infinity, and a diverged run must still write its summary. Strings
    become plain ``str``: torch's version is a subclass that pickles as torch's own class,
    so a sweep's process unpickling a job's summary would import torch (1.5 s of CPU taken
    from the jobs)."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


class Unreadable(Exception):
    """A summary.json that cannot be used; the message says why, in a few words."""


def read_summary(run_dir: Path) -> Summary:
    """The run's summary.json, checked: raises Unreadable saying why it cannot be used."""
    path = Path(run_dir) / SUMMARY
    try:
        data = json.loads(read_bytes(path, MAX_SUMMARY_BYTES, within=run_dir))
    except FileNotFoundError:
        raise Unreadable(f"incomplete: no {SUMMARY} (still running, or stopped before writing it)") from None
    except BadFile as e:  # a FIFO, a device, a symlink out of the directory, too large
        raise Unreadable(f"unknown layout: {e}") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Unreadable(f"corrupt {SUMMARY} ({described(e)})") from None
    if not isinstance(data, dict) or "status" not in data:
        raise Unreadable(f"unknown layout: {SUMMARY} is not a normbench summary (no status)")
    if data["status"] not in STATUSES:
        raise Unreadable(f"unknown layout: status {str(data['status'])[:40]!r} in {SUMMARY}; known: "
                         f"{', '.join(STATUSES)}")
    if not isinstance(data.get("config"), dict):
        raise Unreadable(f"unknown layout: no config in {SUMMARY}")
    known = {k: v for k, v in data.items() if k in FIELDS}
    if not isinstance(known.get("overrides"), list):
        known["overrides"] = []
    return Summary(**known)


def summary_or_none(run_dir: Path) -> Optional[Summary]:
    """The run's summary, or None when there is none that can be read."""
    try:
        return read_summary(run_dir)
    except Unreadable:
        return None


def write_summary(run_dir: Path, summary: Summary) -> None:
    assert summary.status in STATUSES, summary.status
    text = json.dumps(summary.as_dict(), indent=2, allow_nan=False) + "\n"
    atomic_write(Path(run_dir) / SUMMARY, lambda f: f.write(text.encode()))


def flat(config: dict, prefix: str = "") -> dict:
    """A nested config as ``{"model.depth": 3, "norm.name": "bn", ...}``."""
    out: dict = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + str(key)] = value
    return out


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


SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._,=+-[]@:")


def safe_name(text: str) -> str:
    """``text`` as one directory name: every character outside letters, digits and
    ``._,=+-[]@:`` (``/``, spaces, quotes, ``$``, ``%``, ...) written as ``%XX``, so
    different texts never share a name and a name is never a path or an interpolation."""
    return "".join(c if c in SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in str(text))


def clear_attempt(run_dir: Path) -> None:
    """Remove what an earlier attempt of a run wrote, before the run starts over (never
    .hydra/ or the log, which Hydra owns and which say what happened)."""
    for name in (SUMMARY, METRICS, HISTOGRAMS, CHECKPOINT):
        (run_dir / name).unlink(missing_ok=True)
    for stale in run_dir.glob("events.out.tfevents.*"):
        stale.unlink()
    remove_unfinished_writes(run_dir)


def remove_unfinished_writes(run_dir: Path) -> None:
    """The temporary files of ``atomic_write`` that a killed process left unfinished."""
    for stale in run_dir.glob(".*.tmp"):
        stale.unlink()


def holds_a_run(run_dir: Path) -> bool:
    """Whether a run has written its results into ``run_dir`` (finished or not)."""
    return any((run_dir / name).exists() for name in (SUMMARY, CHECKPOINT, METRICS))


def sweeps(root: Path) -> list[Path]:
    """The sweep directories under ``root`` (those holding Hydra's multirun.yaml), newest
    first (by that file's time, then name)."""
    found = list(root.rglob(SWEEP_CONFIG)) if root.is_dir() else []
    return [p.parent for p in sorted(found, key=lambda p: (p.stat().st_mtime, str(p)), reverse=True)]


def usable_dir(key: str, value: Any) -> tuple[Path, bool]:
    """The directory ``key=value`` names, made if missing, and whether it existed before:
    refused in one line when empty, when it is a file, or when it cannot be made or
    written to."""
    text = str(value).strip() if value is not None else ""
    if not text or text == ".":
        raise UsageError(f"{key}={text or repr('')} is not allowed; allowed: a directory of its own (an empty value "
                         f"would write into the working directory)")
    path = Path(text).expanduser()
    existed = path.exists()
    if existed and not path.is_dir():
        raise UsageError(f"{key}={text}: exists and is not a directory; allowed: a directory you can write to")
    check_space(path, f"{key}={text}")  # a full or read-only disk: said before anything is made
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        e.filename = e.filename or text
        raise UsageError(f"{key}={text}: cannot make this directory ({disk_problem(e) or e.strerror}); allowed: a "
                         f"directory you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{key}={text}: not writable; allowed: a directory you can write to")
    return path, existed


class DirectoryLock:
    """An exclusive lock on a directory (``flock`` of its empty ``.lock`` file) held until
    ``release`` or the process ends (the kernel releases it then, ``kill -9`` included):
    one writer per run or sweep directory."""

    def __init__(self, directory: Path, what: str):
        self.path = Path(directory) / LOCK
        self.created = not self.path.exists() and not self.path.is_symlink()
        try:  # never through a symlink (O_NOFOLLOW): it would create or lock a file elsewhere
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise UsageError(f"{shown(self.path)}: cannot hold this {what}'s lock ({described(e)}); allowed: a "
                             f"directory normbench can write to, with no symlink inside") from None
        self._file = os.fdopen(fd, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise UsageError(f"{shown(directory)}: another normbench is writing this {what} now; allowed: one at a "
                             f"time (wait for it, or use another directory)") from None

    def release(self) -> None:
        if not self._file.closed:
            self._file.close()  # closing the descriptor releases the lock

    def discard(self) -> None:
        """Release the lock, and remove its file if taking it made one (a refused run leaves
        the directory as it found it)."""
        self.release()
        if self.created:
            self.path.unlink(missing_ok=True)
