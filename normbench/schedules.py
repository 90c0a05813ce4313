"""The learning-rate schedule axis: a table from ``schedule=<name>`` to its schema, the
``torch.optim.lr_scheduler`` it builds and its constraints. Adding a schedule is one row of
``SCHEDULES`` and one file ``conf/schedule/<name>.yaml``.

Every schedule is stepped once per optimizer step, so the learning rate of step ``s``
(counted from 0) is a function of ``s`` alone, and it applies to the effective learning
rate (``lr`` scaled by ``lr_scaling``, budget.py):

| name     | after the warm-up                                                      | torch             |
| -------- | ---------------------------------------------------------------------- | ----------------- |
| constant | the effective lr                                                       | (none, or LinearLR alone) |
| step     | times ``gamma`` at each of ``milestones`` (in epochs, from the start)  | MultiStepLR       |
| cosine   | from the effective lr down to ``min_lr`` at the last step              | CosineAnnealingLR |

The warm-up (any schedule): ``warmup_steps``, or ``warmup_epochs`` (fractional, turned into
steps of this batch size: every batch size warms over the same data), linearly from
``warmup_start_factor`` x lr to lr (``LinearLR``), then the schedule (``SequentialLR``).
Milestones count from the start of training, not from the end of the warm-up, as in Goyal
et al. (2017) and He et al. (2016): ``milestones=[82,123]`` divides the lr at epochs 82 and
123 whatever the warm-up. The cosine anneals over the steps after the warm-up, as
torchvision's reference script does.

torch is imported only when a schedule is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from omegaconf import MISSING

from . import checks
from .errors import UsageError

if TYPE_CHECKING:
    from torch.optim.lr_scheduler import LRScheduler

    from .budget import Plan


# --- the schemas ---------------------------------------------------------------------------


@dataclass
class ScheduleConfig:
    name: str = MISSING
    warmup_steps: int = MISSING
    """linear warm-up over this many optimizer steps (0: none); or give warmup_epochs"""
    warmup_epochs: Optional[float] = None
    """linear warm-up over this many epochs (fractional; the same data for every batch size);
    null: warmup_steps decides. One of the two."""
    warmup_start_factor: float = MISSING
    """the warm-up starts at this fraction of the learning rate and reaches it linearly"""


@dataclass
class ConstantConfig(ScheduleConfig):
    name: str = "constant"


@dataclass
class StepConfig(ScheduleConfig):
    name: str = "step"
    milestones: List[float] = MISSING
    """epochs (from the start of training, fractional allowed) at which the lr is multiplied by gamma"""
    gamma: float = MISSING
    """the factor applied at each milestone"""


@dataclass
class CosineConfig(ScheduleConfig):
    name: str = "cosine"
    min_lr: float = MISSING
    """the learning rate reached at the last step (an absolute value)"""


# --- constraints beyond the types ---------------------------------------------------------


def check_common(s) -> None:
    checks.integer("schedule.warmup_steps", s.warmup_steps, 0)
    if s.warmup_epochs is not None:
        checks.number("schedule.warmup_epochs", s.warmup_epochs, 0)
        if s.warmup_steps:
            raise UsageError(f"schedule.warmup_steps={s.warmup_steps} and schedule.warmup_epochs={s.warmup_epochs} "
                             f"are both given; allowed: one of them (the other 0 or null)")
    checks.number("schedule.warmup_start_factor", s.warmup_start_factor, 0, 1, lo_open=True)


def _check_step(s, lr: float) -> None:
    ms = list(s.milestones)
    if not ms or not all(checks.is_number(m) and m > 0 for m in ms) or ms != sorted(set(ms)):
        checks.fail("schedule.milestones", s.milestones, "a non-empty increasing list of epochs > 0, e.g. [82,123]")
    checks.number("schedule.gamma", s.gamma, 0, lo_open=True)


def _check_cosine(s, lr: float) -> None:
    checks.number("schedule.min_lr", s.min_lr, 0)
    if s.min_lr > lr:
        checks.fail("schedule.min_lr", s.min_lr, f"0 <= min_lr <= the effective learning rate ({lr:g})")


# --- the builders: the schedule after the warm-up ------------------------------------------


def _step(optimizer, s, plan: "Plan", warmup: int) -> "LRScheduler":
    # torch: only when a run builds it; this table is read at start-up (train --help)
    from torch.optim.lr_scheduler import MultiStepLR

    # MultiStepLR counts from where it starts, the end of the warm-up
    return MultiStepLR(optimizer, milestones=[m - warmup for m in milestone_steps(s, plan)], gamma=s.gamma)


def _cosine(optimizer, s, plan: "Plan", warmup: int) -> "LRScheduler":
    # torch: only when a run builds it; this table is read at start-up (train --help)
    from torch.optim.lr_scheduler import CosineAnnealingLR

    # the last step (total_steps - 1, counted from 0) uses min_lr
    return CosineAnnealingLR(optimizer, T_max=max(1, plan.total_steps - 1 - warmup), eta_min=s.min_lr)


def milestone_steps(s, plan: "Plan") -> list[int]:
    """The optimizer steps at which the lr drops: each milestone epoch in steps of this batch size."""
    return [round(m * plan.steps_per_epoch) for m in s.milestones]


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    label: str
    summary: str
    schema: type
    after_warmup: Optional[Callable[[Any, Any, "Plan", int], "LRScheduler"]]  # None: constant
    check: Optional[Callable[[Any, float], None]] = None  # (schedule cfg, effective lr)
    by_length: bool = False  # the lr at a step depends on the run's length (extending the run changes it)


SCHEDULES: dict[str, Schedule] = {
    "constant": Schedule("constant", "the learning rate throughout (after the warm-up, if any)", ConstantConfig,
                         after_warmup=None),
    "step": Schedule("step", "multiplied by schedule.gamma at each of schedule.milestones (epochs)", StepConfig,
                     after_warmup=_step, check=_check_step),
    "cosine": Schedule("cosine", "half a cosine from the learning rate to schedule.min_lr at the last step",
                       CosineConfig, after_warmup=_cosine, check=_check_cosine, by_length=True),
}


def warmup_steps(s, steps_per_epoch: int) -> int:
    """The warm-up's length in optimizer steps (0: none, also when it would start at lr)."""
    if s.warmup_start_factor >= 1:
        return 0
    if s.warmup_epochs is not None:
        return round(s.warmup_epochs * steps_per_epoch)
    return int(s.warmup_steps)


def build_scheduler(optimizer, s, plan: "Plan") -> Optional["LRScheduler"]:
    """The scheduler of ``s`` (the schedule config) over ``plan``'s steps, stepped after every
    optimizer step; None when the learning rate never changes (no per-step cost)."""
    # torch: only when a run builds it; this table is read at start-up (train --help)
    from torch.optim.lr_scheduler import LinearLR, SequentialLR

    warm = warmup_steps(s, plan.steps_per_epoch)
    after = SCHEDULES[s.name].after_warmup
    main = after(optimizer, s, plan, warm) if after is not None else None
    if warm == 0:
        return main
    warmup = LinearLR(optimizer, start_factor=s.warmup_start_factor, end_factor=1.0, total_iters=warm)
    if main is None:  # LinearLR stays at the full lr after its last step
        return warmup
    return SequentialLR(optimizer, [warmup, main], milestones=[warm])


def same(config: dict) -> dict:
    """A resolved config with the schedule's settings that cannot change the run written one
    way: no warm-up when it has no steps (or starts at the full lr)."""
    s = config.get("schedule")
    if not isinstance(s, dict):
        return config
    steps, epochs, factor = s.get("warmup_steps"), s.get("warmup_epochs"), s.get("warmup_start_factor")
    if (not steps and not epochs) or (isinstance(factor, (int, float)) and factor >= 1):
        s = {**s, "warmup_steps": 0, "warmup_epochs": None, "warmup_start_factor": "n/a"}
        return {**config, "schedule": s}
    return config
