"""normbench's Hydra plugins (Hydra instantiates plugins only from ``hydra_plugins``; the
parts live in ``normbench.sweep``):

- the sweeper: Hydra's basic sweeper (the grid, ``hydra.sweeper.params``, batches) that
  checks every job's config before any trains, stops a local sweep gently on Ctrl-C, and
  ends with a tally;
- the local launcher: Hydra's joblib launcher that outlives one job process killed
  outright (``kill -9``, the out-of-memory killer), which takes joblib's whole pool down.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from omegaconf import open_dict

from normbench import sweep as _sweep
from normbench.errors import UsageError
from normbench.sweep import ORDER, SWEEP_CONFIG, print_tally, remove_if_empty, signal_children, tally
from normbench.sweep_job import STOP_MARKER, launcher_kind, read_summary, request_stop, stop_requested

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
                signal_children(signum)
            print(f"\nnormbench: {signal.Signals(signum).name}: stopping the sweep: jobs that are training stop "
                  f"after their step with a checkpoint, the others do not start; a second one stops at once",
                  file=sys.stderr, flush=True)

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
    """Hydra's joblib launcher, plus: when a job process is killed outright, loky stops
    every job of the pool. The jobs without a result then run once more in a new pool,
    each continuing from its checkpoint when it has one; the finished ones keep theirs.
    A second such loss ends the sweep (its tally says which jobs have no result)."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            return super().launch(job_overrides, initial_job_idx)
        except TerminatedWorkerError as e:
            sweep_dir = Path(str(self.config.hydra.sweep.dir))
            if stop_requested(sweep_dir):  # the sweep is being stopped: nothing to run again
                raise
            returns: list[Optional[JobReturn]] = []
            again = []
            for i, overrides in enumerate(job_overrides):
                job_dir = self._job_dir(overrides, initial_job_idx + i)
                summary = read_summary(job_dir)
                if summary is not None and summary.get("status") in ORDER:
                    returns.append(JobReturn(overrides=list(overrides), working_dir=str(job_dir),
                                             status=JobStatus.COMPLETED, _return_value=summary))
                else:
                    returns.append(None)
                    again.append(overrides)
            log.warning("the job pool broke: %s", e)
            print(f"normbench: a job process was killed outright, and with it every running job; the {len(again)} "
                  f"jobs without a result run again, each from its checkpoint if it has one", file=sys.stderr,
                  flush=True)
            rerun = iter(super().launch(again, initial_job_idx))
            return [r if r is not None else next(rerun) for r in returns]

    def _job_dir(self, overrides: Sequence[str], num: int) -> Path:
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.num = num
        return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
