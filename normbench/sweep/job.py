"""One job of a sweep: one wrapper around ``run.train`` (as lightning-hydra-template's
``task_wrapper`` is around its ``train``) that decides everything a sweep adds to a run:

- what an earlier attempt in its directory means (``resume=true``, or SLURM requeuing a
  preempted or timed-out job): a finished run is skipped, an interrupted (or killed) one
  continues from its checkpoint, anything else starts afresh;
- the sweep's stop marker: after Ctrl-C, jobs that have not started yet record
  ``interrupted`` and return at once;
- its share of the machine: torch threads, a slot of a GPU;
- one writer: the job holds its directory's lock while it runs;
- failure: whatever happens is in its summary.json, and the job returns that summary (it
  never raises), so the other jobs go on; one line when it ends.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from .. import heap, streams
from ..errors import NothingToDo, RunFailed, UsageError
from ..files import shown
from ..resolvers import register_config
from ..run import Place, new_summary, train
from ..rundir import CHECKPOINT, DirectoryLock, Summary, clear_attempt, summary_or_none, write_summary
from ..signals import hand_on, stop_on_signals
from .progress import ended
from .resources import cuda_devices, gpu_slot, launcher_kind, threads_for_job

log = logging.getLogger("normbench")
STOP_MARKER = ".stop"  # in the sweep directory: written when the sweep is asked to stop


def stop_requested(sweep_dir: Path) -> bool:
    return (sweep_dir / STOP_MARKER).exists()


def clear_stop(sweep_dir: Path) -> None:
    (sweep_dir / STOP_MARKER).unlink(missing_ok=True)


def request_stop(sweep_dir: Path) -> None:
    """Jobs of this sweep that have not started will not train."""
    try:
        (sweep_dir / STOP_MARKER).touch()
    except OSError:
        pass


@dataclass
class JobStart:
    skip: Optional[Summary] = None  # the earlier summary of a finished run: nothing to train
    resume_from: Optional[Path] = None  # the job's directory, whose checkpoint training continues from


def start_job(run_dir: Path, resume: bool) -> JobStart:
    """How a sweep job starts in ``run_dir``, from what an earlier attempt left there.

    - finished (completed or diverged), with ``resume``: skipped, its summary kept;
    - interrupted or killed, with a checkpoint: continued from it (this is how a requeued
      SLURM job goes on);
    - anything else: trained from the start, the earlier attempt's files removed.
    """
    earlier = summary_or_none(run_dir)
    if resume and earlier is not None and earlier.finished:
        return JobStart(skip=earlier)
    if (run_dir / CHECKPOINT).is_file() and (earlier is None or earlier.status == "interrupted"):
        return JobStart(resume_from=run_dir)
    clear_attempt(run_dir)
    return JobStart()


def _untrained(cfg: DictConfig, hc, run_dir: Path, status: str, error: Optional[str]) -> Summary:
    """Record a job that did not train (``status``: failed or interrupted)."""
    summary = new_summary(cfg, run_dir, hc.overrides.task, status=status, error=error)
    write_summary(run_dir, summary)
    return summary


def _busy(cfg: DictConfig, hc, run_dir: Path, error: str) -> Summary:
    """A job whose directory another normbench holds: failed, with why, and nothing written
    there (the summary is only returned, to the sweep's tally, which says it)."""
    return new_summary(cfg, run_dir, hc.overrides.task, status="failed", error=error)


def run_job(cfg: DictConfig) -> dict:
    """Run one job; its summary (as a dict) whatever happened."""
    streams.guard()  # a job process's terminal may be closed or gone (normbench train -m ... | head)
    heap.at_exit()  # a worker ends without cli.entry; the sweep waits for its shut-down
    register_config()  # this may be a fresh job process: the resolvers the launcher's config uses
    hc = HydraConfig.get()
    run_dir, sweep_dir = Path(hc.runtime.output_dir), Path(hc.sweep.dir)
    t0 = time.perf_counter()
    try:
        summary, skipped = _job(cfg, hc, run_dir, sweep_dir)
    finally:
        _ignore_ctrl_c_between_jobs()
    _say(summary, run_dir, sweep_dir, time.perf_counter() - t0, skipped)
    return summary.as_dict()


def _job(cfg: DictConfig, hc, run_dir: Path, sweep_dir: Path) -> tuple[Summary, bool]:
    """The job's summary, and whether it was skipped (finished earlier)."""
    with ExitStack() as held, stop_on_signals() as (stop, previous):  # a job process must not die between jobs
        if stop_requested(sweep_dir):  # the sweep was stopped before this job began
            return summary_or_none(run_dir) or _untrained(cfg, hc, run_dir, "interrupted", None), False
        try:
            held.callback(DirectoryLock(run_dir, "run directory").release)
        except UsageError as e:  # another process writes there: its files are not this job's to touch
            return _busy(cfg, hc, run_dir, str(e)), False
        start = start_job(run_dir, resume=bool(cfg.resume))
        if start.skip is not None:
            return start.skip, True
        local = launcher_kind(hc) == "local"
        place = Place(run_dir, list(hc.overrides.task), resume=start.resume_from is not None,
                      threads=threads_for_job(cfg.threads, hc), device=_gpu(cfg, local, sweep_dir, held),
                      progress=False)
        try:
            summary = train(cfg, place, stop)
        except UsageError as e:  # recorded in its own directory; the rest of the sweep goes on
            return _untrained(cfg, hc, run_dir, "failed", str(e)), False
        except RunFailed:
            return summary_or_none(run_dir) or _untrained(cfg, hc, run_dir, "failed", "failed before training"), False
        except NothingToDo:  # killed between its last checkpoint and its summary: trained again
            clear_attempt(run_dir)
            summary = train(cfg, dataclasses.replace(place, resume=False), stop)
        if summary.status == "interrupted":
            hand_on(stop, previous)  # submitit's "time is up": it requeues the job, which resumes
            if local:  # Ctrl-C in a local sweep: the jobs that have not started will not
                request_stop(sweep_dir)
        return summary, False


def _gpu(cfg: DictConfig, local: bool, sweep_dir: Path, held: ExitStack) -> Optional[str]:
    """A local sweep on several GPUs: the GPU of the slot this job holds for its lifetime."""
    if not local or cfg.device not in ("auto", "cuda"):
        return None
    gpus = cuda_devices(cfg.device)
    return f"cuda:{held.enter_context(gpu_slot(sweep_dir, gpus, cfg.jobs_per_gpu))}" if gpus >= 2 else None


def _say(s: Summary, run_dir: Path, sweep_dir: Path, seconds: float, skipped: bool) -> None:
    """One line per job, with where the sweep is (``3/14 done, ~20 s left``): the sweep
    prints the tally and where things are."""
    done = {"completed": f"val/acc {s.final_val_acc:.4f}" if s.final_val_acc is not None else "",
            "diverged": f"at step {s.diverged_at_step}", "failed": s.error or "",
            "interrupted": f"after {s.steps} steps"}[s.status]
    line = (f"{s.status} earlier, skipped: {shown(run_dir, sweep_dir)}" if skipped else
            f"{s.status} {shown(run_dir, sweep_dir)}: {done} ({s.wall_time_s or seconds:.1f} s)")
    log.info(line)
    where = ended(sweep_dir, run_dir.name)
    print(line + (f"; {where}" if where else ""), flush=True)


def _ignore_ctrl_c_between_jobs() -> None:
    """In a job process of a parallel sweep (no handler of the sweep's own here), Ctrl-C
    between two jobs would kill the process and with it the pool: it is ignored there. The
    sweep process itself records it, and the jobs not started yet do not start."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
