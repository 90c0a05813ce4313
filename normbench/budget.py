"""How long a run trains and at which learning rate: the budget (``epochs`` or ``steps``)
and the learning-rate scaling rule (``lr_scaling``, ``base_batch_size``).

- ``epochs=N``: N passes over the training split; ``steps=N``: N optimizer steps (the last
  epoch may be partial). One of them; neither given means ``epochs=20``.
- ``lr_scaling``: the learning rate the optimizer starts from (before schedule and warm-up)
  is ``lr x (batch_size / base_batch_size)^p``, p = 0 (``none``), 1 (``linear``, Goyal et
  al. 2017) or 1/2 (``sqrt``): ``lr`` is the rate at ``base_batch_size``.

A batch-size comparison at equal data seen: ``epochs`` (or ``steps`` inversely
proportional to the batch size), ``lr_scaling=linear`` and a warm-up in epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from .checks import integer, option
from .inapplicable import NOT_APPLICABLE
from .errors import UsageError

DEFAULT_EPOCHS = 20  # neither epochs nor steps given

# lr_scaling -> the exponent of batch_size / base_batch_size
LR_SCALING = {"none": 0.0, "linear": 1.0, "sqrt": 0.5}
LRScaling = Enum("LRScaling", {name: name for name in LR_SCALING})  # the type Hydra checks values against



def epochs_of(cfg) -> Optional[int]:
    """The epochs budget: ``epochs``, or 20 when neither it nor ``steps`` is given; None
    when the budget is in steps."""
    if cfg.get("steps") is not None:
        return None
    return DEFAULT_EPOCHS if cfg.get("epochs") is None else cfg.epochs


def check_budget(cfg) -> None:
    """One of epochs and steps (each a positive integer)."""
    if cfg.get("epochs") is not None and cfg.get("steps") is not None:
        raise UsageError(f"epochs={cfg.epochs} and steps={cfg.steps} are both given; allowed: one of them "
                         f"(epochs=null steps={cfg.steps}, or epochs={cfg.epochs} alone)")
    if cfg.get("steps") is not None:
        integer("steps", cfg.steps, 1)
    elif cfg.get("epochs") is not None:
        integer("epochs", cfg.epochs, 1)
    integer("base_batch_size", cfg.base_batch_size, 1)


def effective_lr(cfg) -> float:
    """The learning rate the run starts from, before its schedule: ``lr`` scaled by the batch size."""
    p = LR_SCALING[option(cfg.lr_scaling)]
    return float(cfg.lr) * (cfg.batch_size / cfg.base_batch_size) ** p if p else float(cfg.lr)


@dataclass(frozen=True)
class Plan:
    """The run's length in optimizer steps, from its budget and the training split's size."""
    steps_per_epoch: int  # full batches per pass (the last incomplete batch is dropped)
    total_steps: int
    batch_size: int
    train_samples: int

    def epochs_at(self, step: int) -> float:
        """Epochs (fractional) done after ``step`` optimizer steps: samples seen / training split."""
        return step * self.batch_size / self.train_samples

    def samples_at(self, step: int) -> int:
        return step * self.batch_size


def plan(cfg, train_samples: int) -> Plan:
    steps_per_epoch = train_samples // cfg.batch_size
    epochs = epochs_of(cfg)
    total = cfg.steps if epochs is None else epochs * steps_per_epoch
    return Plan(steps_per_epoch, total, cfg.batch_size, train_samples)


def same(config: dict) -> dict:
    """A resolved config with the budget and scaling written one way: ``epochs`` null means
    20 when ``steps`` is null; the scaling rule and base batch cannot change a run whose
    batch is the base batch, and the base batch cannot with ``lr_scaling=none``."""
    out = dict(config)
    if out.get("steps") is None and out.get("epochs") is None and "epochs" in out:
        out["epochs"] = DEFAULT_EPOCHS
    if "lr_scaling" in out:
        if out.get("batch_size") == out.get("base_batch_size"):
            out["lr_scaling"], out["base_batch_size"] = NOT_APPLICABLE, NOT_APPLICABLE
        elif option(out["lr_scaling"]) == "none":
            out["base_batch_size"] = NOT_APPLICABLE
    return out
