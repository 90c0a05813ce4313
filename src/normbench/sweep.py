"""Sweeps: ``normbench train -m ...``, Hydra's multirun with normbench's guarantees.

- Job directories named by the overrides that vary (``norm=bn,seed=0``), not 0, 1, 2.
- Every job's config checked before the first one trains: bad input stops the sweep
  with one line, nothing trained.
- A job that fails, diverges or is interrupted is recorded in its own directory and the
  others go on; at the end one tally line (``46 completed, 1 diverged, 1 failed``), where
  each failure's log is, the report command, and a non-zero exit status when a job
  failed or was interrupted.
- Ctrl-C (or SIGTERM) in a local sweep: running jobs stop after their step with a
  checkpoint, jobs not started yet do not start, and ``resume=true`` finishes the sweep.

Hydra's sweeper expands the grid and its launchers run the jobs (joblib locally,
submitit on SLURM); normbench's sweeper (``hydra_plugins.normbench_sweeper``: Hydra takes
plugins only from that package) adds to it, with the parts here, and schedules nothing.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import OmegaConf

from .errors import UsageError
from .overrides import key as _key
from .overrides import OFF, merge
from .rundir import STATUSES, SWEEP_CONFIG, shown
from .sweep_job import n_jobs, read_summary, stop_requested



def job_dir_name(override_dirname: str, num: Any) -> str:
    """A job's directory: the overrides that vary in the sweep (``norm=bn,seed=0``), or the
    job's number when nothing varies. A ``/`` in a value would make a subdirectory."""
    return override_dirname.replace("/", "%") if override_dirname else str(num)


def register_resolvers() -> None:
    for name, fn in (("normbench.job_dir", job_dir_name), ("normbench.n_jobs", n_jobs)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()


# ----------------------------------------------------------------------------------------
# The command line of a sweep: which keys name the job directories, and resume


def _is_hydra_override(arg: str) -> bool:
    return arg.lstrip("+~").startswith(("hydra.", "hydra/"))


def task_overrides(args: Sequence[str]) -> list[str]:
    return [a for a in args if "=" in a and not a.startswith("-") and not _is_hydra_override(a)]


def constant_keys(args: Sequence[str]) -> list[str]:
    """The keys given one value on the command line: they do not name job directories."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = {"resume"}
    parser = OverridesParser.create()
    for arg in task_overrides(args):
        try:
            (override,) = parser.parse_overrides([arg])
        except Exception:  # Hydra reports the malformed override itself
            continue
        if not override.is_sweep_override():
            keys.add(override.key_or_group)
    return sorted(keys)


def find_sweep(args: Sequence[str], root: Path = Path("outputs/multirun")) -> Path:
    """The newest sweep under ``root`` started with these task overrides (resume aside)."""
    import yaml

    wanted = sorted(a for a in task_overrides(args) if _key(a) != "resume")
    found = []
    for record in root.rglob(SWEEP_CONFIG) if root.is_dir() else []:
        try:
            saved = yaml.safe_load(record.read_text())["hydra"]["overrides"]["task"]
        except Exception:
            continue
        if sorted(a for a in saved if _key(a) != "resume") == wanted:
            found.append(record)
    if not found:
        shown = " ".join(wanted) or "(no overrides)"
        raise UsageError(f"resume=true: no sweep under {root} was started with the overrides {shown}; allowed: "
                         f"the same overrides as the sweep to finish, or resume=<sweep directory>")
    return max(found, key=lambda p: p.stat().st_mtime).parent


def _saved_overrides(sweep_dir: Path, value: str) -> tuple[list[str], list[str]]:
    import yaml

    record = sweep_dir / SWEEP_CONFIG
    if not record.is_file():
        raise UsageError(f"resume={value}: not a sweep directory: no {SWEEP_CONFIG} in it; allowed: true, or a "
                         f"directory normbench train -m made (outputs/multirun/...)")
    saved = yaml.safe_load(record.read_text())["hydra"]["overrides"]
    return list(saved.get("task") or []), list(saved.get("hydra") or [])


def sweep_args(args: list[str]) -> list[str]:
    """The Hydra arguments of ``normbench train -m <args>``: job directories named by the
    keys that vary, and ``resume=true`` / ``resume=<sweep dir>`` pointed at the sweep to finish."""
    given = [a for a in args if _key(a) == "resume" and "=" in a and not a.startswith("-")]
    value = given[-1].split("=", 1)[1] if given else ""
    if value and value.lower() not in OFF:
        args = [a for a in args if a not in given]
        if value.lower() == "true":
            sweep_dir = next((Path(a.split("=", 1)[1]) for a in args if _key(a) == "hydra.sweep.dir"), None)
            if sweep_dir is None:
                sweep_dir = find_sweep(args)
                args.append(f"hydra.sweep.dir={sweep_dir}")
            elif not (sweep_dir / SWEEP_CONFIG).is_file():
                raise UsageError(f"resume=true: hydra.sweep.dir={sweep_dir} holds no sweep ({SWEEP_CONFIG}); "
                                 f"allowed: the directory of an earlier sweep")
        else:  # the sweep's own overrides, then those given
            sweep_dir = Path(value).expanduser()
            if not sweep_dir.is_dir():
                raise UsageError(f"resume={value}: no such directory; allowed: true, or a sweep directory "
                                 f"(outputs/multirun/...)")
            task, hydra_args = _saved_overrides(sweep_dir, value)
            saved = [a for a in [*task, *hydra_args] if _key(a) not in (
                "resume", "hydra.sweep.dir", "hydra.job.config.override_dirname.exclude_keys")]
            args = [*merge(saved, args), f"hydra.sweep.dir={sweep_dir.resolve()}"]
        args.append("resume=true")
    if not any(_key(a) == "hydra.job.config.override_dirname.exclude_keys" for a in args):
        args.append(f"hydra.job.config.override_dirname.exclude_keys=[{','.join(constant_keys(args))}]")
    return args


# ----------------------------------------------------------------------------------------
# The end of a sweep: a tally of what each job's summary.json says


@dataclass
class Job:
    dir: Path
    status: str
    error: Optional[str]


@dataclass
class Tally:
    sweep_dir: Path
    jobs: list[Job]
    stopped_by: Optional[int] = None  # the signal that stopped the sweep itself

    def counts(self) -> Counter:
        return Counter(j.status for j in self.jobs)

    def line(self) -> str:
        c = self.counts()
        return ", ".join(f"{c[s]} {s}" for s in STATUSES if c[s] or s == "completed")

    @property
    def exit_code(self) -> int:
        if self.stopped_by:
            return 128 + self.stopped_by
        c = self.counts()
        return 1 if c["failed"] or c["interrupted"] else 0


def tally(sweep_dir: Path, job_dirs: Sequence[Path]) -> Tally:
    """What each job's summary.json says. A job with none was killed: ``interrupted`` when
    the sweep was being stopped (it continues from its checkpoint on resume), else ``failed``."""
    stopping = stop_requested(sweep_dir)
    jobs = []
    for d in job_dirs:
        s = read_summary(d)
        if s is None or s.get("status") not in STATUSES:
            if not d.exists():
                jobs.append(Job(d, "interrupted" if stopping else "failed", "never started"))
            elif (d / "summary.json").exists():
                jobs.append(Job(d, "failed", "summary.json is unreadable"))
            elif stopping:
                jobs.append(Job(d, "interrupted", "stopped with the sweep before it could write summary.json"))
            else:
                jobs.append(Job(d, "failed", "no summary.json: the job was killed before it finished"))
        else:
            jobs.append(Job(d, s["status"], s.get("error")))
    return Tally(sweep_dir, jobs)


def print_tally(t: Tally, seconds: float, argv: Sequence[str]) -> None:
    print(f"sweep: {t.line()} ({len(t.jobs)} jobs, {seconds:.1f} s)", flush=True)
    for job in t.jobs:
        if job.status in ("failed", "interrupted"):
            log = job.dir / "train.log"
            print(f"  {job.status}: {shown(job.dir)}" + (f": {job.error}" if job.error else "")
                  + (f" (log: {shown(log)})" if log.exists() else ""), file=sys.stderr)
    print(f"sweep directory: {shown(t.sweep_dir)}")
    if t.counts()["failed"] or t.counts()["interrupted"]:
        again = [a for a in argv if _key(a) not in ("resume", "hydra.sweep.dir",
                                                   "hydra.job.config.override_dirname.exclude_keys")]
        print("finish it: " + shlex.join(["normbench", "train", *again, f"resume={shown(t.sweep_dir)}"]))
    print(f"normbench report {shlex.quote(shown(t.sweep_dir))}")
    print(f"tensorboard --logdir {shlex.quote(shown(t.sweep_dir))}", flush=True)


LAST: Optional[Tally] = None  # the tally of the last sweep of this process, for the command line


def remove_if_empty(sweep_dir: Path) -> None:
    """A sweep refused before any job ran leaves nothing that looks like a sweep."""
    from .rundir import remove_empty_dirs

    (sweep_dir / SWEEP_CONFIG).unlink(missing_ok=True)
    remove_empty_dirs(sweep_dir)


def signal_descendants(signum: int) -> None:
    """Pass a signal on to this process's descendants (the parallel jobs, forked from the
    sweep's fork server, a child of this process), on Linux."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    below, frontier = [], [os.getpid()]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        below += frontier
    for pid in below:
        try:
            os.kill(pid, signum)
        except OSError:
            pass
