"""``normbench train resume=<run dir>``: the run goes on in its own directory, with its own
settings (read from its ``.hydra/overrides.yaml``, checked as data: ``trust.py``) and
from its checkpoint. ``epochs``/``steps``, ``device``, ``progress`` and ``threads`` may
change (a larger budget trains it longer); any other setting that differs from the
checkpoint's is refused. A run killed before its first checkpoint starts over, saying so.

Training longer keeps the learning rate of every step already taken, so it is allowed
where the schedule is a function of the step alone (constant, step, any warm-up): the run
goes on as if it had been started with the longer budget. A schedule that depends on the
run's length (cosine, which reaches ``min_lr`` at the last step) is refused: the longer
run would have had other learning rates all along.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import OmegaConf

from .budget import epochs_of, plan
from .checkpoint import evaluated_at, load_checkpoint
from .errors import NothingToDo, UsageError
from .files import refuse_links
from .identity import canonical
from .schedules import SCHEDULES
from .overrides import key, merge, quoted, resume_value
from .rundir import CHECKPOINT, SUMMARY, clear_attempt, flat
from . import trust

log = logging.getLogger("normbench")

# what may differ between a run and its resumption
RESUME_MAY_CHANGE = ("epochs", "steps", "device", "progress", "resume", "threads", "jobs_per_gpu", "data.download")


def run_args(args: list[str]) -> list[str]:
    """The Hydra arguments of ``normbench train resume=<run dir> [overrides]``: the run's
    own overrides, then those given, and Hydra's run directory set to the run's."""
    allowed = "a run directory (outputs/runs/<date>/<time>)"
    value, rest = resume_value(args, allowed)
    if value is None:
        return rest
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


def checkpoint_to_resume(run: Path, cfg, config: dict, train_samples: int) -> dict | None:
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
    saved, now = flat(canonical(state["config"])), flat(canonical(config))
    for k in sorted(set(saved) | set(now)):
        if k not in RESUME_MAY_CHANGE and saved.get(k) != now.get(k):
            raise UsageError(f"resume={run}: {k}={now.get(k)} differs from the run's {k}={saved.get(k)}; allowed: the "
                             f"run's own settings (epochs or steps, device and progress may change)")
    _check_budget(run, cfg, state, plan(cfg, train_samples).total_steps,
                  plan(OmegaConf.create(state["config"]), train_samples).total_steps)
    return state


def _check_budget(run: Path, cfg, state: dict, total: int, planned: int) -> None:
    """There are steps left in the budget ``total`` (the run planned ``planned``), and a
    budget other than the planned one leaves the learning rates of the steps taken as they were."""
    done = state["step"]
    budget = f"steps={cfg.steps}" if cfg.get("steps") is not None else f"epochs={epochs_of(cfg)}"
    if not isinstance(done, int) or done > total:
        raise UsageError(f"{budget} is not allowed with resume={run}: the run has done {done} steps "
                         f"({state['epoch']} epochs); allowed: a budget of at least that")
    if done == total and evaluated_at(state) == done:
        raise NothingToDo(f"resume={run}: the run has done its {done} steps ({state['epoch']} epochs); nothing to do "
                          f"(a larger epochs=N or steps=N trains it longer)")
    if total != planned and SCHEDULES[cfg.schedule.name].by_length:
        raise UsageError(f"{budget} is not allowed with resume={run}: schedule={cfg.schedule.name} spreads its "
                         f"learning rates over the run's planned {planned} steps, so a run of {total} steps would "
                         f"have had other learning rates from the start; allowed: the run's own budget, or a new run")
