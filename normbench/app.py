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
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from . import files
from .errors import Ended, Interrupted, NothingToDo, RunFailed, UsageError
from .rundir import LOCK, LOG, remove_empty_dirs


def n_jobs(device: str, jobs_per_gpu: int) -> int:
    """``${normbench.n_jobs:...}`` in conf/hydra/launcher/local.yaml: the local launcher's
    job count (sweep/resources.py), imported only when a sweep asks for it."""
    from .sweep.resources import n_jobs as count

    return count(device, jobs_per_gpu)


def register() -> None:
    """Register normbench's schemas in Hydra's ConfigStore, its sweeper with Hydra's
    plugins (Hydra finds plugins by listing the hydra_plugins package, which an editable
    install hides), and its resolvers. Idempotent."""
    from hydra.core.plugins import Plugins
    from hydra_plugins.normbench_sweeper.normbench_sweeper import NormbenchSweeper

    from .config import register as register_schemas

    register_schemas()
    Plugins.instance().register(NormbenchSweeper)
    if not OmegaConf.has_resolver("normbench.n_jobs"):
        OmegaConf.register_new_resolver("normbench.n_jobs", n_jobs)
    if not OmegaConf.has_resolver("normbench.run_name"):
        OmegaConf.register_new_resolver("normbench.run_name", run_name)
    if not OmegaConf.has_resolver("normbench.norms"):
        OmegaConf.register_new_resolver("normbench.norms", norm_lines)


def norm_lines() -> str:
    """``${normbench.norms:}`` in ``train --help``: one line per row of the norm table."""
    from .norms import NORMS

    return "\n".join(f"    {name:<5} {row.label}: {row.summary}" for name, row in NORMS.items())


def run_name(override_dirname: str) -> str:
    """``_model=cnn,norm=bn`` after a single run's timestamp: its overrides, so that
    ``tensorboard --logdir outputs`` lists runs by what they are (none: nothing)."""
    from .rundir import safe_name

    return "_" + safe_name(override_dirname)[:120] if override_dirname else ""


def single_run(cfg: DictConfig):
    """One run: train it and say where its directory is. How it ended otherwise (bad input,
    a failure, a signal: exit status 2, 1, 130 or 143) goes to the command line in Ended."""
    try:
        return _single_run(cfg)
    except (UsageError, RunFailed, NothingToDo, Interrupted) as e:
        raise Ended(e) from None


def _single_run(cfg: DictConfig):
    from .run import Place, result_lines, train
    from .signals import stop_on_signals

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
        from .sweep.job import run_job

        return run_job(cfg)
    return single_run(cfg)
