"""What one job of a sweep finds and takes before it trains.

- its directory: a job run again in the same sweep directory (``resume=true``, or SLURM
  requeuing a preempted or timed-out job) skips a finished run, continues an interrupted
  one from its checkpoint, and starts a failed one afresh;
- the sweep's stop marker: after Ctrl-C, jobs that have not started yet record
  ``interrupted`` and return at once;
- its share of the machine: torch threads, and a GPU slot when several jobs share GPUs.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from .overrides import OFF, key
from .rundir import CHECKPOINT, HISTOGRAMS, METRICS, SUMMARY

STOP_MARKER = ".stop"  # in the sweep directory: written when the sweep is asked to stop
FINISHED = ("completed", "diverged")  # a result: never trained again by resume


@dataclass
class JobStart:
    skip: Optional[dict] = None  # the earlier summary of a finished run: nothing to train
    resume_from: Optional[Path] = None  # a run directory whose checkpoint training continues from


def read_summary(run_dir: Path) -> Optional[dict]:
    """The run's summary.json, or None when it is missing or unreadable."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def start_job(run_dir: Path, resume: bool) -> JobStart:
    """How a sweep job starts in ``run_dir``, from what an earlier attempt left there.

    - finished (completed or diverged), with ``resume``: skipped, its summary kept;
    - interrupted or killed, with a checkpoint: continued from it (this is how a requeued
      SLURM job goes on);
    - anything else: trained from the start, the earlier attempt's files removed.
    """
    earlier = read_summary(run_dir)
    status = earlier.get("status") if earlier else None
    if resume and status in FINISHED:
        return JobStart(skip=earlier)
    if (run_dir / CHECKPOINT).is_file() and status in (None, "interrupted"):
        return JobStart(resume_from=run_dir)
    clear_attempt(run_dir)
    return JobStart()


def clear_attempt(run_dir: Path) -> None:
    """Remove what an earlier attempt of a run wrote (never .hydra/ or the log, which
    Hydra owns and which says what happened)."""
    for name in (SUMMARY, METRICS, HISTOGRAMS, CHECKPOINT):
        (run_dir / name).unlink(missing_ok=True)
    for stale in [*run_dir.glob("events.out.tfevents.*"), *run_dir.glob(".*.tmp")]:
        stale.unlink()


def stop_requested(sweep_dir: Path) -> bool:
    return (sweep_dir / STOP_MARKER).exists()


def request_stop(sweep_dir: Path) -> None:
    """Jobs of this sweep that have not started will not train."""
    try:
        (sweep_dir / STOP_MARKER).touch()
    except OSError:
        pass


def launcher_kind(hydra_cfg) -> str:
    """``local`` (joblib or Hydra's basic launcher, on this machine) or ``submitit``."""
    target = str(hydra_cfg.launcher.get("_target_", ""))
    return "submitit" if "submitit" in target else "local"


def threads_for_job(threads: Optional[int], hydra_cfg) -> Optional[int]:
    """Torch threads for a sweep job: ``threads`` when set; else in a joblib sweep the cores
    divided among the parallel jobs (1 thread with as many jobs as cores), in a submitit job
    its ``cpus_per_task``; None leaves torch's default."""
    if threads:
        return threads
    launcher = hydra_cfg.launcher
    target = str(launcher.get("_target_", "")).lower()
    if "joblib" in target:
        import joblib

        return max(1, joblib.cpu_count() // joblib.effective_n_jobs(launcher.get("n_jobs") or -1))
    if "submitit" in target:
        return launcher.get("cpus_per_task") or int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or None
    return None


def nvidia_gpu_present() -> bool:
    """Whether this machine may have a CUDA device, without importing torch (3 s here):
    NVIDIA's device files (Linux), unless CUDA_VISIBLE_DEVICES hides every GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def n_jobs(device: str, jobs_per_gpu: int) -> int:
    """Parallel jobs of a local sweep: with CUDA, ``jobs_per_gpu`` on each visible GPU;
    otherwise one per core (joblib's -1). Torch is asked only where a GPU may be, so a
    CPU machine's sweep starts its jobs without importing torch first."""
    if device != "cpu" and nvidia_gpu_present():
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count() * jobs_per_gpu
    return -1


def runs_jobs_in_parallel_here(args: Sequence[str]) -> bool:
    """Whether ``normbench train -m <args>`` runs its jobs in parallel processes on this
    machine, as far as the command line alone tells: the default launcher with its default
    job count (no override of a ``launcher`` key or group, no ``--config-dir`` or other
    Hydra flag such as ``--cfg``, no ``resume=<sweep dir>``), more than one core (as
    joblib counts them), and no GPU (whose count sets the job count). The sweep's fork
    server can then start before Hydra does; otherwise the launcher starts it once the
    config says how many jobs run at once."""
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in args):
        return False
    if any("launcher" in key(a) for a in args):
        return False
    if any(key(a) == "resume" and a.partition("=")[2].lower() not in (*OFF, "true") for a in args):
        return False  # resume=<sweep dir> brings the sweep's own overrides, launcher ones among them
    import joblib

    return joblib.cpu_count() > 1 and not nvidia_gpu_present()


JOB_SERVER = "normbench.job_server"  # what the fork server imports before forking job processes


def start_job_server() -> bool:
    """Start the fork server that a local parallel sweep's job processes are forked from;
    it imports ``JOB_SERVER`` (what every job needs) in the background. Linux only:
    Windows has no fork server, and on macOS a fork of a process that has loaded system
    frameworks (as torch does) is unsafe; there job processes start as fresh interpreters."""
    if not sys.platform.startswith("linux") or "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    from multiprocessing import forkserver

    multiprocessing.set_forkserver_preload([JOB_SERVER])
    forkserver.ensure_running()  # returns at once; the server imports while the sweep goes on
    return True


@contextmanager
def gpu_slot(sweep_dir: Path, n_gpus: int, jobs_per_gpu: int, poll_s: float = 0.2) -> Iterator[int]:
    """Hold one of ``n_gpus * jobs_per_gpu`` slots of the sweep for the job's lifetime and
    give its GPU index: the first jobs land on different GPUs, and no GPU holds more than
    ``jobs_per_gpu`` jobs at a time. Slots are file locks in ``<sweep>/.gpu-slots/``, released
    by the kernel when a job's process dies."""
    slots = sweep_dir / ".gpu-slots"
    slots.mkdir(parents=True, exist_ok=True)
    while True:
        for k in range(jobs_per_gpu):
            for gpu in range(n_gpus):
                f = open(slots / f"gpu{gpu}-{k}.lock", "a")
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.close()
                    continue
                try:
                    yield gpu
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
                    f.close()
                return
        time.sleep(poll_s)
