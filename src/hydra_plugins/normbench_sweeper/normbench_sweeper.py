"""normbench's Hydra sweeper: Hydra's basic sweeper (the grid, ``hydra.sweeper.params``,
batches) that checks every job's config before any trains, stops a local sweep gently on
Ctrl-C, and ends with a tally. Hydra instantiates sweepers only from ``hydra_plugins``;
the parts live in ``normbench.sweep``."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import open_dict

from normbench import sweep as _sweep
from normbench.errors import UsageError
from normbench.sweep import SWEEP_CONFIG, print_tally, remove_if_empty, signal_children, tally
from normbench.sweep_job import STOP_MARKER, launcher_kind, request_stop, stop_requested


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
