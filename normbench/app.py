"""The Hydra application behind ``normbench train``: ``register()`` makes normbench's
schemas, plugins and resolvers known (one explicit call, before Hydra starts and in each
job process), and ``task`` is the function Hydra calls for every run: a single run goes
to ``run.train``, a job of a sweep to the sweep's job wrapper (``sweep/job.py``), which
is imported only then."""

from __future__ import annotations

import shutil
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.types import RunMode
from hydra_plugins.normbench_sweeper.normbench_sweeper import NormbenchSweeper
from omegaconf import DictConfig

from . import files
from .errors import Ended, Interrupted, NothingToDo, RunFailed, UsageError
from .resolvers import register_config
from .run import Place, result_lines, train
from .files import LOCK, LOG
from .rundir import remove_empty_dirs
from .signals import stop_on_signals


def register() -> None:
    """Register normbench's schemas and resolvers (resolvers.py) and its sweeper with
    Hydra's plugins (Hydra finds plugins by listing the hydra_plugins package, which an
    editable install hides). Idempotent."""
    register_config()
    Plugins.instance().register(NormbenchSweeper)


def single_run(cfg: DictConfig):
    """One run: train it and say where its directory is. How it ended otherwise (bad input,
    a failure, a signal: exit status 2, 1, 130 or 143) goes to the command line in Ended."""
    try:
        return _single_run(cfg)
    except (UsageError, RunFailed, NothingToDo, Interrupted) as e:
        raise Ended(e) from None


def _single_run(cfg: DictConfig):
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    place = Place(run_dir, list(hc.overrides.task), resume=bool(cfg.resume), threads=cfg.threads)
    with stop_on_signals() as (stop, _):
        try:
            summary = train(cfg, place, stop)
        except (UsageError, NothingToDo):
            if cfg.resume:  # never remove anything from the run being resumed: put back what Hydra rewrote
                files.put_back(run_dir)
            else:
                discard_hydra_files(run_dir)
            raise
    print("\n".join(result_lines(summary, run_dir)), flush=True)
    if summary.status == "interrupted":
        raise Interrupted(stop.signum)
    return summary


def discard_hydra_files(run_dir: Path) -> None:
    """Bad input in a single run: remove what Hydra (and the lock) wrote, so no directory
    is left that looks like a run. Only those files, never anything else."""
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    (run_dir / LOG).unlink(missing_ok=True)
    (run_dir / LOCK).unlink(missing_ok=True)
    remove_empty_dirs(run_dir)


@hydra.main(config_path="pkg://normbench.conf", config_name="config", version_base="1.3")
def task(cfg: DictConfig):
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        # the sweep package: only in a sweep's job (a single run imports none of it)
        from .sweep.job import run_job

        return run_job(cfg)
    return single_run(cfg)
