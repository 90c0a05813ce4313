"""normbench's Hydra plugins (Hydra instantiates plugins only from ``hydra_plugins``; the
parts live in ``normbench.sweep``):

- the sweeper: Hydra's basic sweeper (the grid, ``hydra.sweeper.params``, batches) that
  checks every job's config before any trains, stops a local sweep gently on Ctrl-C, and
  ends with a tally;
- the local launcher: Hydra's joblib launcher whose job processes start with what a job
  imports already loaded (forked from a server that imported it while the sweeper checked
  the configs), that runs each job with the config the sweeper composed and checked
  (not composing it a second time), and that outlives one job process killed outright
  (``kill -9``, the out-of-memory killer), which takes joblib's whole pool down.
"""

from __future__ import annotations

import logging
import pickle
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from omegaconf import DictConfig, open_dict

from normbench import sweep as _sweep
from normbench.errors import UsageError
from normbench.rundir import STATUSES
from normbench.sweep import SWEEP_CONFIG, print_tally, remove_if_empty, signal_descendants, tally
from normbench.sweep_job import (STOP_MARKER, launcher_kind, read_summary, request_stop, start_job_server,
                                 stop_requested)

log = logging.getLogger("normbench")


class NormbenchSweeper(BasicSweeper):
    """Hydra's basic sweeper (the grid, ``hydra.sweeper.params``, batches), checking every
    job's config before any trains and ending with a tally."""

    def __init__(self, max_batch_size: Optional[int], params: Optional[dict] = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.job_dirs: list[Path] = []

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from normbench.validate import check_config

        loader = self.hydra_context.config_loader
        for overrides in batch:
            cfg = loader.load_sweep_config(self.config, list(overrides))
            try:
                check_config(cfg)
            except UsageError as e:
                raise UsageError(f"{e} (in the sweep job {' '.join(overrides)})") from None
            with open_dict(cfg):
                cfg.hydra.job.num = len(self.job_dirs)
            self.job_dirs.append(Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir))
            if isinstance(self.launcher, NormbenchJoblibLauncher):
                self.launcher.remember(overrides, cfg)

    def sweep(self, arguments: List[str]) -> Any:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        existed = (sweep_dir / SWEEP_CONFIG).exists()
        (sweep_dir / STOP_MARKER).unlink(missing_ok=True)  # an earlier Ctrl-C of this sweep
        t0 = time.perf_counter()
        local = launcher_kind(self.config.hydra) == "local"
        stopped: list[int] = []
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

        if isinstance(self.launcher, NormbenchJoblibLauncher):
            self.launcher.start_workers()  # their imports go on while the configs are checked
        if local:  # on SLURM, Ctrl-C stops waiting; the jobs go on
            for s in (signal.SIGINT, signal.SIGTERM):
                previous[s] = signal.signal(s, on_signal)
        try:
            result = super().sweep(arguments)
        except UsageError:
            if not existed:  # refused before any job ran: leave nothing that looks like a sweep
                remove_if_empty(sweep_dir)
            raise
        except BaseException:
            _sweep.LAST = tally(sweep_dir, self.job_dirs)
            _sweep.LAST.stopped_by = stopped[0] if stopped else signal.SIGINT if stop_requested(sweep_dir) else None
            print_tally(_sweep.LAST, time.perf_counter() - t0, sys.argv[1:])
            print("normbench: the sweep stopped before all its jobs ran; the finish-it command above "
                  "runs the rest", file=sys.stderr)
            raise
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        _sweep.LAST = tally(sweep_dir, self.job_dirs)
        _sweep.LAST.stopped_by = stopped[0] if stopped else signal.SIGINT if stop_requested(sweep_dir) else None
        print_tally(_sweep.LAST, time.perf_counter() - t0, sys.argv[1:])
        return result


class NormbenchJoblibLauncher(JoblibLauncher):
    """Hydra's joblib launcher, plus:

    - its job processes are forked from a server process that imported what a job needs
      (``normbench.job_server``: torch, torch._dynamo, TensorBoard's writer, normbench),
      started before the sweeper checks the configs, so those imports (about 4.5 s of CPU
      here) are paid once, alongside that check, instead of once in every job process;
    - each job runs with the config the sweeper composed when it checked it, sent as
      bytes, instead of composing it again in the job process (about 0.2 s a job);
    - when a job process is killed outright, loky stops every job of the pool. The jobs
      without a result then run once more in a new pool, each continuing from its
      checkpoint when it has one; the finished ones keep theirs. A second such loss ends
      the sweep (its tally says which jobs have no result).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.composed: Dict[tuple, bytes] = {}  # overrides -> the job's pickled config

    def start_workers(self) -> None:
        """With more than one job at a time, have loky fork its job processes from the fork
        server (``sweep_job.start_job_server``), started now: its imports run in parallel
        with the sweeper's check of the configs."""
        import joblib

        if joblib.effective_n_jobs(self.joblib.get("n_jobs") or -1) > 1 and start_job_server():
            from joblib.externals.loky.backend.context import set_start_method

            set_start_method("forkserver", force=True)

    def remember(self, overrides: Sequence[str], cfg: DictConfig) -> None:
        """The config the sweeper composed for a job, its ``hydra.job.num`` set: the job
        runs with it as is."""
        import cloudpickle  # the classes of Hydra's plugin configs pickle only by value

        with open_dict(cfg):
            cfg.hydra.job.id = f"{cfg.hydra.job.name}_{cfg.hydra.job.num}"
        self.composed[tuple(overrides)] = cloudpickle.dumps(cfg)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            return self._launch(job_overrides, initial_job_idx)
        except TerminatedWorkerError as e:
            sweep_dir = Path(str(self.config.hydra.sweep.dir))
            if stop_requested(sweep_dir):  # the sweep is being stopped: nothing to run again
                raise
            returns: list[Optional[JobReturn]] = []
            again = []
            for i, overrides in enumerate(job_overrides):
                job_dir = self._job_dir(overrides, initial_job_idx + i)
                summary = read_summary(job_dir)
                if summary is not None and summary.get("status") in STATUSES:
                    returns.append(JobReturn(overrides=list(overrides), working_dir=str(job_dir),
                                             status=JobStatus.COMPLETED, _return_value=summary))
                else:
                    returns.append(None)
                    again.append((initial_job_idx + i, overrides))
            log.warning("the job pool broke: %s", e)
            print(f"normbench: a job process was killed outright, and with it every running job; the {len(again)} "
                  f"jobs without a result run again, each from its checkpoint if it has one", file=sys.stderr,
                  flush=True)
            rerun = iter(self._run(again))
            return [r if r is not None else next(rerun) for r in returns]
        finally:
            for overrides in job_overrides:
                self.composed.pop(tuple(overrides), None)

    def _launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Hydra's joblib launch (``hydra_joblib_launcher._core.launch``), each job given its
        composed config."""
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Joblib.Parallel(%s) is launching %d jobs", ",".join(f"{k}={v}" for k, v in self._joblib().items()),
                 len(job_overrides))
        log.info("Launching jobs, sweep output dir : %s", sweep_dir)
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))
        return self._run([(initial_job_idx + i, o) for i, o in enumerate(job_overrides)])

    def _joblib(self) -> Dict[str, Any]:
        joblib_cfg = dict(self.joblib, backend="loky")  # Hydra's jobs need processes
        process_joblib_cfg(joblib_cfg)
        return joblib_cfg

    def _run(self, jobs: Sequence[tuple]) -> List[JobReturn]:
        """Run ``(job number, overrides)`` pairs in parallel, in the order given."""
        from joblib import Parallel, delayed

        singleton_state = Singleton.get_state()
        return Parallel(**self._joblib())(
            delayed(run_composed_job)(self._job_config(overrides, idx), self.hydra_context, self.task_function,
                                      singleton_state)
            for idx, overrides in jobs)

    def _job_config(self, overrides: Sequence[str], idx: int) -> bytes:
        if tuple(overrides) not in self.composed:  # not checked by normbench's sweeper: composed here
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.num = idx
            self.remember(overrides, cfg)
        return self.composed[tuple(overrides)]

    def _job_dir(self, overrides: Sequence[str], num: int) -> Path:
        cfg = pickle.loads(self._job_config(overrides, num))
        return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)


def run_composed_job(config: bytes, hydra_context: HydraContext, task_function: TaskFunction,
                     singleton_state: Dict[Any, Any]) -> JobReturn:
    """In a job process: Hydra's joblib ``execute_job``, with the job's config given
    (pickled) rather than composed again."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = pickle.loads(config)
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
