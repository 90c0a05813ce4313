"""A sweep's progress as its jobs end: ``3/14 done, ~20 s left``.

Before launching, the sweep process writes the plan into the sweep directory (when it
started, how many jobs run); each job, as it ends, adds its name to that file under a lock
and reads how many have ended, so that its one line says where the sweep is. The lock
counts each job once, whatever the order in which parallel jobs end; it works the same
for jobs on SLURM, which share the sweep directory. The estimate is the time so far per
job ended, times the jobs left: rough while the first jobs pay the workers' start-up.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

PROGRESS = ".progress"  # in the sweep directory: "<start time> <jobs>", then one job name per line


def start(sweep_dir: Path, jobs: int) -> None:
    """A new plan: ``jobs`` jobs to run from now (a resumed sweep starts its count again)."""
    (sweep_dir / PROGRESS).write_text(f"{time.time()} {jobs}\n")


def ended(sweep_dir: Path, name: str) -> str:
    """Count the job ``name`` as ended: ``3/14 done, ~20 s left`` ("" without a plan, as in
    a run outside a sweep or a directory that cannot be written)."""
    try:
        with open(sweep_dir / PROGRESS, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            first, *names = f.read().splitlines()
            if name not in names:
                f.write(name + "\n")
                names.append(name)
        started, jobs = first.split()
        started, jobs = float(started), int(jobs)
    except (OSError, ValueError):
        return ""
    done = min(len(names), jobs)
    if done >= jobs:
        return f"{done}/{jobs} done"
    left = (time.time() - started) / done * (jobs - done)
    return f"{done}/{jobs} done, ~{duration(left)} left"


def duration(seconds: float) -> str:
    """``40 s``, ``12 min``, ``2.5 h``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
