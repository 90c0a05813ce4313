"""normbench's sweeper: what a grid means, around Hydra's stock launchers (joblib locally,
submitit on SLURM), which run the jobs and which it only calls through ``launch``.

``Sweep.run`` (Hydra's ``Sweeper.sweep``):

1. the grid, from the overrides parsed once (``grid.py``), each job named by what varies;
2. every job's config composed and checked before any trains: bad input stops the sweep
   in one line, nothing trained, nothing left that looks like a sweep;
3. jobs that are the same run (a setting their norm ignores, ``seed=0,0``) run once, the
   others recorded as duplicates of it;
4. the directory locked (one sweep at a time in it), Hydra's multirun.yaml and the
   TensorBoard experiment config written;
5. the jobs launched, Ctrl-C and SIGTERM stopping them gently; a job process killed
   outright (which takes joblib's pool down with every running job) costs one retry of
   the jobs without a result, each from its checkpoint;
6. the tally, from what each job returned: printed, and a sweep with a failed or
   interrupted job (or stopped itself) ends with ``SweepFailed``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

from hydra.core.plugins import Plugins
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from ..config import AXES
from ..errors import SweepFailed, UsageError, first_line
from ..files import refuse_links, shown
from ..identity import canonical
from ..overrides import key
from ..rundir import SWEEP_CONFIG, DirectoryLock, flat, remove_empty_dirs, summary_or_none, usable_dir
from ..validate import check_config, check_keys
from . import grid, progress
from .job import clear_stop, request_stop, stop_requested
from .resources import launcher_kind
from .resume import HYDRA_SET_HERE
from .tally import Outcome, Tally, outcome, print_tally

log = logging.getLogger("normbench")


class Sweep:
    def __init__(self, hydra_context, task_function, config, max_batch_size, params):
        self.context, self.config = hydra_context, config
        self.max_batch_size, self.params = max_batch_size, dict(params or {})
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def run(self, arguments: list[str]) -> list:
        t0 = time.perf_counter()
        sweep_dir, existed = usable_dir("hydra.sweep.dir", self.config.hydra.sweep.dir)
        try:
            values = grid.parse(self.params, list(arguments), self.context.config_loader)
            jobs, varying = grid.jobs(values)
            configs = self._checked(jobs, sweep_dir)
            unique, duplicates = same_runs(jobs, configs)
            refuse_links(sweep_dir, "sweep directory")  # before its lock, multirun.yaml and the jobs' .hydra/
            for job in unique:
                refuse_links(sweep_dir / job.name, "run directory")
            lock = DirectoryLock(sweep_dir, "sweep")
            if existed and (sweep_dir / SWEEP_CONFIG).exists() and not self.config.get("resume"):
                raise UsageError(f"hydra.sweep.dir={shown(sweep_dir)} holds a sweep already; allowed: resume=true "
                                 f"to finish it, or another directory")
        except UsageError:
            if not existed:  # refused before any job ran: leave nothing that looks like a sweep
                remove_empty_dirs(sweep_dir)
            raise
        OmegaConf.save(self.config, sweep_dir / SWEEP_CONFIG)
        # tensorboard: only once the sweep is accepted; a refused one says its line without it
        from ..hparams import write_experiment

        write_experiment(sweep_dir, [configs[j.name] for j in unique], [_hparam_key(k) for k in varying])
        clear_stop(sweep_dir)  # an earlier Ctrl-C of this sweep
        progress.start(sweep_dir, len(unique))
        print(f"{len(jobs)} jobs" + (f", {len(unique)} to run ({len(duplicates)} repeating another: not trained)"
                                     if duplicates else "") + f"; {self._how(len(unique))}", flush=True)
        returned: dict[str, object] = {}
        with self._gentle_stop(sweep_dir) as stopped:
            try:
                self._launch(unique, sweep_dir, returned)
            except BaseException:
                self._end(jobs, duplicates, returned, sweep_dir, stopped, t0)
                print("normbench: the sweep stopped before all its jobs ran; the finish-it command above runs the "
                      "rest", file=sys.stderr)
                raise
        lock.release()
        self._end(jobs, duplicates, returned, sweep_dir, stopped, t0)
        return [list(returned.values())]

    def _how(self, jobs: int) -> str:
        """How the jobs will run, said before the first one ends (starting the workers takes
        seconds of silence otherwise)."""
        launcher = self.config.hydra.launcher
        if launcher_kind(self.config.hydra) == "submitit":
            return "submitting them through Hydra's submitit launcher"
        if "joblib" not in str(launcher.get("_target_", "")).lower():
            return "one after another in this process"
        # joblib: only with the joblib launcher (the basic and submitit ones run without it)
        import joblib

        at_once = min(jobs, joblib.effective_n_jobs(launcher.get("n_jobs") or -1))
        if at_once == 1:  # joblib runs a single job at a time in this process: no workers to start
            return "one after another in this process"
        return f"{at_once} at a time; starting the worker processes (each imports torch first: a few seconds)"

    def _checked(self, jobs: list[grid.Job], sweep_dir: Path) -> dict:
        """Each job's resolved config (hydra aside), after checking it."""
        configs = {}
        for job in jobs:
            cfg = self.context.config_loader.load_sweep_config(self.config, job.launched_with)
            try:
                check_keys(cfg)
                check_config(cfg)
            except (UsageError, OmegaConfBaseException) as e:
                raise UsageError(f"{first_line(e)} (in the sweep job {' '.join(job.overrides)})") from None
            with open_dict(cfg):
                del cfg["hydra"]
            configs[job.name] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        return configs

    def _launch(self, jobs: list[grid.Job], sweep_dir: Path, returned: dict) -> None:
        size = self.max_batch_size or len(jobs) or 1
        for start in range(0, len(jobs), size):
            batch = jobs[start:start + size]
            try:
                results = self.launcher.launch([j.launched_with for j in batch], initial_job_idx=start)
            except BrokenProcessPool as e:
                if stop_requested(sweep_dir):  # the sweep is being stopped: nothing to run again
                    raise
                again = [j for j in batch if not _has_result(sweep_dir / j.name)]
                log.warning("the job pool broke: %s", e)
                print(f"normbench: a job process was killed outright, and with it every running job; the "
                      f"{len(again)} jobs without a result run again, each from its checkpoint if it has one",
                      file=sys.stderr, flush=True)
                results = self.launcher.launch([j.launched_with for j in again],
                                               initial_job_idx=len(jobs) + start)
                batch = again
            returned.update(zip([j.name for j in batch], results, strict=True))

    @contextmanager
    def _gentle_stop(self, sweep_dir: Path):
        """On a local launcher, Ctrl-C and SIGTERM stop the sweep gently: jobs that are
        training stop after their step with a checkpoint, the others do not start. (On
        SLURM, Ctrl-C stops waiting; the jobs go on.) Yields the signals received."""
        stopped: list[int] = []
        if launcher_kind(self.config.hydra) != "local":
            yield stopped
            return
        previous = {}

        def on_signal(signum, _frame):
            stopped.append(signum)
            request_stop(sweep_dir)
            for s, h in previous.items():
                signal.signal(s, h)
            if signum != signal.SIGINT:  # Ctrl-C reaches every job itself; kill only this process
                signal_descendants(signum)
            print(f"\nnormbench: {signal.Signals(signum).name}: stopping the sweep: jobs that are training stop "
                  f"after their step with a checkpoint, the others do not start; a second one stops at once",
                  file=sys.stderr, flush=True)

        for s in (signal.SIGINT, signal.SIGTERM):
            previous[s] = signal.signal(s, on_signal)
        try:
            yield stopped
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _end(self, jobs, duplicates: dict, returned: dict, sweep_dir: Path, stopped: list, t0: float) -> None:
        """The tally: printed; SweepFailed when a job failed or was interrupted, or the sweep was stopped."""
        stopping = bool(stopped) or stop_requested(sweep_dir)
        outcomes = []
        for i, j in enumerate(jobs):
            if i in duplicates:
                same_as, why = duplicates[i]
                outcomes.append(Outcome(j.name, sweep_dir / j.name, "duplicate", why, same_as))
            else:
                outcomes.append(outcome(j.name, sweep_dir / j.name, returned.get(j.name), stopping))
        t = Tally(sweep_dir, outcomes, stopped[0] if stopped else signal.SIGINT if stopping else 0)
        task = OmegaConf.to_container(self.config.hydra.overrides.task)
        hydra = [o for o in OmegaConf.to_container(self.config.hydra.overrides.hydra)
                 if key(o) not in (*HYDRA_SET_HERE, "hydra.mode")]  # set by resume and by -m
        print_tally(t, time.perf_counter() - t0, [*[o for o in task if key(o) != "resume"], *hydra])
        if t.stopped_by or t.unfinished:
            raise SweepFailed(f"{t.line()}: see the failures above", t.stopped_by if t.stopped_by else 0)


def same_runs(jobs: list[grid.Job], configs: dict) -> tuple[list[grid.Job], dict]:
    """The jobs to run, and {position of a job that need not run: (the job it repeats, why)}:
    jobs whose configs are equal once the settings their norm ignores are set aside
    (``identity.canonical``) train the same network in the same way."""
    first: dict[str, str] = {}
    unique, duplicates = [], {}
    for i, job in enumerate(jobs):
        config = configs[job.name]
        identity = json.dumps({k: v for k, v in canonical(config).items() if k != "resume"}, sort_keys=True,
                              default=str)
        if identity in first:
            duplicates[i] = (first[identity], _why(config, configs[first[identity]]))
        else:
            first[identity] = job.name
            unique.append(job)
    return unique, duplicates


def _why(config: dict, same_as: dict) -> str:
    """Why a job is the same run as ``same_as``: the settings in which they differ, none of
    which can change the network."""
    mine, theirs = flat(config), flat(same_as)
    moot = [k for k, v in mine.items() if theirs.get(k, v) != v]
    if not moot:
        return "the same settings"
    return f"{', '.join(f'{k}={mine[k]}' for k in moot)} has no effect with norm={config['norm']['name']}" + (
        f" at batch_size={config['batch_size']}" if any(k.startswith("norm.") for k in moot) else "")


def _hparam_key(override_key: str) -> str:
    """The HParams key of an override's key: ``norm`` -> ``norm.name``."""
    return f"{override_key}.name" if override_key in AXES else override_key


def _has_result(job_dir: Path) -> bool:
    s = summary_or_none(job_dir)
    return s is not None and s.status != "interrupted"


def signal_descendants(signum: int) -> None:
    """Pass a signal on to this process's descendants (the parallel jobs), on Linux."""
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
