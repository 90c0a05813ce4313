"""The end of a sweep: what became of each job, from what its job returned (the summary the
job wrapper hands back) or, for a job that returned nothing (its process was killed),
from its summary.json; one line of counts, each failure with its log, and what to run
next."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import disk_problem
from ..files import LOG, shown
from ..rundir import STATUSES, SUMMARY, summary_or_none

ORDER = (*STATUSES, "duplicate")


@dataclass
class Outcome:
    name: str  # the job's directory name
    dir: Path
    status: str  # a summary status, or "duplicate" (not trained: the same run as ``same_as``)
    error: Optional[str] = None
    same_as: Optional[str] = None


@dataclass
class Tally:
    sweep_dir: Path
    outcomes: list[Outcome] = field(default_factory=list)
    stopped_by: int = 0  # the signal that stopped the sweep itself

    def counts(self) -> Counter:
        return Counter(o.status for o in self.outcomes)

    def line(self) -> str:
        c = self.counts()
        words = {"duplicate": "duplicates" if c["duplicate"] != 1 else "duplicate"}
        return ", ".join(f"{c[s]} {words.get(s, s)}" for s in ORDER if c[s] or s == "completed")

    @property
    def unfinished(self) -> bool:
        c = self.counts()
        return bool(c["failed"] or c["interrupted"])


def outcome(name: str, job_dir: Path, returned, stopping: bool) -> Outcome:
    """A job's outcome from what it returned (a JobReturn, or None when its process died
    before returning), else from its directory."""
    if returned is not None:
        try:
            value = returned.return_value  # raises what the task raised, if it did
        except Exception as e:  # the job wrapper records failures itself; this is a bug's trace, or a full disk
            return Outcome(name, job_dir, "failed", disk_problem(e) or f"{type(e).__name__}: {e}")
        if isinstance(value, dict) and value.get("status") in STATUSES:
            return Outcome(name, job_dir, value["status"], value.get("error"))
    s = summary_or_none(job_dir)
    if s is not None:
        return Outcome(name, job_dir, s.status, s.error)
    if not job_dir.exists():
        return Outcome(name, job_dir, "interrupted" if stopping else "failed", "never started")
    if (job_dir / SUMMARY).exists():
        return Outcome(name, job_dir, "failed", "summary.json is unreadable")
    if stopping:
        return Outcome(name, job_dir, "interrupted", "stopped with the sweep before it could write summary.json")
    return Outcome(name, job_dir, "failed", "no summary.json: the job was killed before it finished")


def print_tally(t: Tally, seconds: float, command: list[str]) -> None:
    """The counts, each failure and duplicate, where the sweep is, and what to run next
    (``command``: the sweep's own overrides, for the finish-it line)."""
    print(f"sweep: {t.line()} ({len(t.outcomes)} jobs, {seconds:.1f} s)", flush=True)
    for o in t.outcomes:
        if o.status in ("failed", "interrupted"):
            log = o.dir / LOG
            print(f"  {o.status}: {shown(o.dir)}" + (f": {o.error}" if o.error else "")
                  + (f" (log: {shown(log)})" if log.exists() else ""), file=sys.stderr)
        elif o.status == "duplicate":
            print(f"  duplicate: {o.name} is the same run as {o.same_as}: not trained ({o.error})")
    print(f"sweep directory: {shown(t.sweep_dir)}")
    if t.unfinished or t.stopped_by:
        print("finish it: " + shlex.join(["normbench", "train", "-m", *command, f"resume={shown(t.sweep_dir)}"]))
    print(f"normbench report {shlex.quote(shown(t.sweep_dir))}")
    print(f"tensorboard --logdir {shlex.quote(shown(t.sweep_dir))}", flush=True)
