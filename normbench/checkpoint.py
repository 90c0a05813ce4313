"""checkpoint.pt: everything a run needs to go on exactly where it stopped (model,
optimizer, step, epoch, position in the epoch, RNG states, config), written atomically
and read back only with ``torch.load(weights_only=True)``: a file that would unpickle
Python objects, which can run code, is refused. A checkpoint is data: its config is
checked, and nothing in it is resolved or run (``config_from``)."""

from __future__ import annotations

import io
import pickle
import threading
from pathlib import Path
from typing import Optional

from .data import DATASETS, ImageDataConfig
from .errors import UsageError, described
from .files import MAX_CHECKPOINT_BYTES, BadFile, atomic_write, open_regular
from .rundir import CHECKPOINT
from .trust import check_config

CHECKPOINT_KEYS = ("model", "optimizer", "step", "epoch", "rng", "config")
# keys added to the config since a checkpoint may have been made: absent means these values
# (a nested dict adds keys inside that group)
ADDED_KEYS = {"amp": "none", "channels_last": False, "compile": False, "threads": None, "jobs_per_gpu": 1,
              "probe_landscape": False, "steps": None, "lr_scaling": "none", "base_batch_size": 64,
              "schedule": {"name": "constant", "warmup_steps": 0, "warmup_epochs": None, "warmup_start_factor": 0.01},
              "optim": {"norm_weight_decay": None, "bias_weight_decay": None}}


def with_added_keys(config: dict) -> dict:
    """A checkpoint's config with the keys added since an older normbench made it, as that
    normbench ran them (no schedule, one weight decay, no augmentation)."""
    out = dict(config)
    for key, value in ADDED_KEYS.items():
        if isinstance(value, dict):
            out[key] = {**value, **out[key]} if isinstance(out.get(key), dict) else out.get(key, value)
        else:
            out.setdefault(key, value)
    data = out.get("data")
    row = DATASETS.get(data.get("name")) if isinstance(data, dict) else None
    if row is not None and issubclass(row.schema, ImageDataConfig) and "augment" not in data:
        out["data"] = {**data, "augment": "none"}
    return out


class CheckpointWriter:
    """The checkpoints of one run, written off the training thread. ``save`` serializes the
    state at once (a snapshot: the next steps may change the tensors) and a thread writes
    the bytes with :func:`~normbench.files.atomic_write` (fsync, rename: 5 ms a
    checkpoint here, mostly waiting for the disk) while training goes on. One write at a
    time: a save waits for the write before it, and ``wait`` for the last one (before
    summary.json says the run ended). A crash loses at most the write in flight: the
    checkpoint before it stays whole. A write's error (a full disk) is raised by the next
    ``save`` or ``wait``."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / CHECKPOINT
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    def save(self, state: dict) -> None:
        import torch  # torch: resume.py reads this module at train --help, which stays without torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.wait()
        self._thread = threading.Thread(target=self._write, args=(buffer.getbuffer(),), name="normbench-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _write(self, data: memoryview) -> None:
        try:
            atomic_write(self.path, lambda f: f.write(data))
        except BaseException as e:  # raised in the training thread, by the next save or wait
            self._error = e

    def wait(self) -> None:
        """Return when the last checkpoint is on disk; raise what its write raised."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """Write ``run_dir/checkpoint.pt`` now (what :class:`CheckpointWriter` does, waited for).
    ``state`` holds only tensors, numbers, strings and containers of them, so it loads with
    ``torch.load(..., weights_only=True)``."""
    writer = CheckpointWriter(run_dir)
    writer.save(state)
    writer.wait()


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


def load_checkpoint(path: Path, source: str | None = None) -> dict:
    """A normbench checkpoint, loaded on the CPU with ``torch.load(weights_only=True)``, its
    config checked as data (``trust.check_config``; ``source`` names it in a refusal).
    Every problem is a UsageError of one line."""
    import torch  # torch: resume.py reads this module at train --help, which stays without torch

    named, path = Path(path), checkpoint_path(path)
    # a file named on the command line is the user's (its symlinks followed); a run directory's
    # checkpoint.pt is data, followed only to a file inside the directory
    within = named if named.is_dir() else path.resolve().parent
    try:  # a regular file of a bounded size (a FIFO would hang torch.load, /dev/zero never end)
        with open_regular(path, MAX_CHECKPOINT_BYTES, within=within) as f:
            state = torch.load(f, map_location="cpu", weights_only=True)
    except BadFile as e:
        raise UsageError(f"{path}: refused: {e}; allowed: the {CHECKPOINT} of a normbench run") from None
    except pickle.UnpicklingError as e:
        # torch's message: a paragraph on weights_only, then what it would not load
        globals_ = [line.strip() for line in str(e).splitlines() if "GLOBAL" in line]
        if globals_:  # a pickled object: loading it would call that function
            raise UsageError(f"{path}: refused: it holds pickled Python objects, which could run code when "
                             f"loaded; normbench loads checkpoints with torch.load(weights_only=True) "
                             f"({globals_[0].rstrip('.')})") from e
        raise UsageError(f"{path}: not a readable checkpoint (corrupt, truncated or not a PyTorch file)") from e
    except Exception as e:  # torch.load's errors for a file that is not a readable checkpoint vary
        raise UsageError(f"{path}: not a readable checkpoint (corrupt, truncated or not a PyTorch file): "
                         f"{described(e)}") from e
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise UsageError(f"{path}: not a normbench checkpoint: no {', '.join(missing)}; allowed: the "
                         f"{CHECKPOINT} of a normbench run")
    if not isinstance(state["config"], dict):
        raise UsageError(f"{path}: not a normbench checkpoint: its config is not a mapping")
    check_config(state["config"], source or str(path))
    state["config"] = with_added_keys(state["config"])
    check_fields(state, path)
    return state


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_fields(state: dict, path: Path) -> None:
    """A checkpoint's fields are what a run can have written: ``step``, ``epoch`` and
    ``position`` counts (an epoch no more than the config's ``epochs``, no more epochs than
    steps), the states mappings, ``perm`` a permutation the position lies within. Anything
    else is refused in one line, before anything is built from it."""
    import torch  # torch: resume.py reads this module at train --help, which stays without torch

    def refuse(field: str, why: str) -> UsageError:
        return UsageError(f"{path}: refused: {field}={str(state.get(field))[:40]} {why}; allowed: the "
                          f"{CHECKPOINT} a normbench run wrote")

    for field in ("step", "epoch", *(("position",) if "position" in state else ())):
        if not _count(state[field]):
            raise refuse(field, "is not a count (an integer >= 0)")
    if "evaluated" in state and not (_count(state["evaluated"]) and state["evaluated"] <= state["step"]):
        raise refuse("evaluated", f"is not a step of the run (0 to its step={state['step']})")
    epochs = state["config"].get("epochs")
    if _count(epochs) and state["epoch"] > epochs:
        raise refuse("epoch", f"is more than the run's epochs={epochs}")
    if state["epoch"] > state["step"]:
        raise refuse("epoch", f"is more than its step={state['step']} (every epoch takes a step)")
    for field in ("model", "optimizer", "rng"):
        if not isinstance(state[field], dict):
            raise refuse(field, "is not a mapping")
    perm = state.get("perm")
    if perm is not None and not (isinstance(perm, torch.Tensor) and perm.ndim == 1 and not perm.is_floating_point()
                                 and state.get("position", 0) <= len(perm)):
        raise refuse("perm", "is not a permutation of the training split that holds its position")


def evaluated_at(state: dict) -> int:
    """The step of a checkpoint's last evaluation; a checkpoint from before it was recorded
    was saved at an end of epoch (evaluated) or mid-epoch (not)."""
    if "evaluated" in state:
        return state["evaluated"]
    return state["step"] if state.get("position", 0) == 0 else -1
