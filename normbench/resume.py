"""``normbench train resume=<run dir>``: the run goes on in its own directory, with its own
settings (read from its ``.hydra/overrides.yaml``, checked as data: ``trust.py``) and
from its checkpoint. ``epochs``, ``device``, ``progress`` and ``threads`` may change
(``epochs=N`` above the run's trains it longer); any other setting that differs from the
checkpoint's is refused. A run killed before its first checkpoint starts over, saying so.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .checkpoint import load_checkpoint
from .errors import NothingToDo, UsageError
from .files import refuse_links
from .overrides import key, merge, quoted, resume_value
from .rundir import CHECKPOINT, SUMMARY, clear_attempt, flat

log = logging.getLogger("normbench")

# what may differ between a run and its resumption
RESUME_MAY_CHANGE = ("epochs", "device", "progress", "resume", "threads", "jobs_per_gpu", "data.download")


def run_args(args: list[str]) -> list[str]:
    """The Hydra arguments of ``normbench train resume=<run dir> [overrides]``: the run's
    own overrides, then those given, and Hydra's run directory set to the run's."""
    allowed = "a run directory (outputs/runs/<date>/<time>)"
    value, rest = resume_value(args, allowed)
    if value is None:
        return rest
    from . import trust

    run_dir = Path(value).expanduser()
    if not run_dir.is_dir():
        raise UsageError(f"resume={value}: no such directory; allowed: {allowed}")
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        raise UsageError(f"resume={value}: not a run directory: no .hydra/overrides.yaml in it; allowed: a "
                         f"directory normbench train made")
    source = f"resume={value}: .hydra/overrides.yaml"
    saved = [o for o in trust.check_overrides(trust.read_overrides(overrides, source), source,
                                              config_dirs=trust.config_dirs(args)) if key(o) != "resume"]
    refuse_links(run_dir, "run directory")  # before Hydra writes .hydra/ and its log there
    return [*merge(saved, rest), f"resume={quoted(run_dir.resolve())}", f"hydra.run.dir={quoted(run_dir.resolve())}"]


def checkpoint_to_resume(run: Path, cfg, config: dict) -> dict | None:
    """The checkpoint of the run directory ``run`` after checking that ``config`` is that
    run's own (but for ``RESUME_MAY_CHANGE``) and that there is something left to do; None
    when the run stopped before its first checkpoint (it starts over)."""
    if not (run / CHECKPOINT).is_file() and not (run / SUMMARY).exists():
        print(f"normbench: resume={run}: the run stopped before its first checkpoint (the end of its first epoch); "
              f"starting it over")
        log.warning("no checkpoint: the run starts over")
        clear_attempt(run)
        return None
    state = load_checkpoint(run, f"resume={run}: {CHECKPOINT}")
    saved, now = flat(state["config"]), flat(config)
    for k in sorted(set(saved) | set(now)):
        if k not in RESUME_MAY_CHANGE and saved.get(k) != now.get(k):
            raise UsageError(f"resume={run}: {k}={now.get(k)} differs from the run's {k}={saved.get(k)}; allowed: the "
                             f"run's own settings (epochs, device and progress may change)")
    done = state["epoch"]  # epochs trained and evaluated
    if not isinstance(done, int) or done > cfg.epochs:
        raise UsageError(f"epochs={cfg.epochs} is not allowed with resume={run}: the run has done "
                         f"{done} epochs; allowed: epochs >= {done}")
    if done == cfg.epochs:
        raise NothingToDo(f"resume={run}: the run has done its {done} epochs; nothing to do "
                          f"(epochs=N with N > {done} trains it longer)")
    return state
