"""When two runs are the same experiment: ``canonical(config)`` writes every setting that
cannot change a run one way, so that two resolved configs that are equal after it train
the same network in the same way. Each axis says what it knows about itself:

- the norm's row (``norms.NORMS``): the top-level settings it ignores (``placement`` with
  ``norm=none``, an identity in the norm's place) and its own settings that mean the same
  (ghost batches as large as the batch are the batch);
- the schedule (``schedules.same``): a warm-up of no steps, or one starting at the full lr,
  is no warm-up;
- the budget (``budget.same``): ``epochs`` null is 20 when ``steps`` is null; the scaling
  rule cannot change a run at its base batch size;
- the data (``augment.same``): with ``data.augment=none`` the augmentation's settings.

A setting that cannot change the run reads ``n/a`` (``NOT_APPLICABLE``, from inapplicable.py). The sweeper runs
one job per canonical config, the report groups and deduplicates runs on it, and the
HParams tab shows it.
"""

from __future__ import annotations

from .augment import same as same_augment
from .budget import same as same_budget
from .inapplicable import NOT_APPLICABLE
from .norms import NORMS
from .schedules import same as same_schedule


def canonical(config: dict) -> dict:
    """``config`` (a resolved config, nested dicts) with every setting that cannot change the
    run written one way; see the module docstring."""
    config = same_augment(same_schedule(same_budget(dict(config))))
    norm = NORMS.get(str((config.get("norm") or {}).get("name")))
    if norm is None:
        return config
    config = norm.same(config) if norm.same is not None else config
    return {k: (NOT_APPLICABLE if k in norm.ignores else v) for k, v in config.items()}
