"""The optimizer axis: a table from ``optim=<name>`` to its schema, its builder and its
constraints. The learning rate is the top-level key ``lr``. Adding an optimizer is one row
of ``OPTIMIZERS`` and one file ``conf/optim/<name>.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List

from omegaconf import MISSING

from . import checks


@dataclass
class SGDConfig:
    name: str = "sgd"
    momentum: float = MISSING
    weight_decay: float = MISSING
    nesterov: bool = MISSING


@dataclass
class AdamConfig:
    name: str = "adam"
    betas: List[float] = MISSING
    eps: float = MISSING
    weight_decay: float = MISSING


def _check_sgd(o) -> None:
    checks.number("optim.momentum", o.momentum, 0, 1, hi_open=True)
    if o.nesterov and o.momentum == 0:
        checks.fail("optim.nesterov", o.nesterov, "false when optim.momentum=0 (Nesterov needs momentum)")


def _check_adam(o) -> None:
    if len(o.betas) != 2 or not all(isinstance(b, float) and 0 <= b < 1 for b in o.betas):
        checks.fail("optim.betas", o.betas, "two numbers [beta1,beta2], each 0 <= beta < 1")
    checks.number("optim.eps", o.eps, 0, lo_open=True)


def _sgd(params, lr: float, o):
    from torch.optim import SGD

    return SGD(params, lr=lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov)


def _adam(params, lr: float, o):
    from torch.optim import Adam

    return Adam(params, lr=lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)


@dataclass(frozen=True)
class Optimizer:
    label: str
    summary: str
    schema: type
    build: Callable[[Any, float, Any], Any]  # (parameters, lr, optim config) -> torch.optim.Optimizer
    check: Callable[[Any], None]


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer("SGD", "SGD with optim.momentum (0.9), optim.nesterov, optim.weight_decay", SGDConfig,
                     _sgd, _check_sgd),
    "adam": Optimizer("Adam", "Adam with optim.betas, optim.eps, optim.weight_decay", AdamConfig, _adam, _check_adam),
}


def build_optimizer(cfg, params):
    """The optimizer ``cfg.optim`` over ``params`` with learning rate ``cfg.lr``."""
    return OPTIMIZERS[cfg.optim.name].build(params, cfg.lr, cfg.optim)
