"""What any process that composes normbench's configs needs before Hydra reads them:
the schemas in Hydra's ConfigStore and the ``${normbench.*}`` resolvers the YAML files
use. A leaf of the import graph: ``app.py`` (the command's process) and ``sweep/job.py``
(each job process) both call :func:`register_config`, and neither imports the other."""

from __future__ import annotations

from omegaconf import OmegaConf

from . import config
from .norms import NORMS
from .rundir import safe_name


def n_jobs(device: str, jobs_per_gpu: int) -> int:
    """``${normbench.n_jobs:...}`` in conf/hydra/launcher/local.yaml: the local launcher's
    job count (sweep/resources.py)."""
    # the sweep package: only when a sweep asks for its job count (a single run imports none of it)
    from .sweep.resources import n_jobs as count

    return count(device, jobs_per_gpu)


def run_name(override_dirname: str) -> str:
    """``_model=cnn,norm=bn`` after a single run's timestamp: its overrides, so that
    ``tensorboard --logdir outputs`` lists runs by what they are (none: nothing)."""
    return "_" + safe_name(override_dirname)[:120] if override_dirname else ""


def norm_lines() -> str:
    """``${normbench.norms:}`` in ``train --help``: one line per row of the norm table."""
    return "\n".join(f"    {name:<5} {row.label}: {row.summary}" for name, row in NORMS.items())


RESOLVERS = {"normbench.n_jobs": n_jobs, "normbench.run_name": run_name, "normbench.norms": norm_lines}


def register_config() -> None:
    """Register normbench's schemas and resolvers. Idempotent."""
    config.register()
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
