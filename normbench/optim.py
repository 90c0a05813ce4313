"""The optimizer axis: a table from ``optim=<name>`` to its schema, its builder and its
constraints, and the parameter groups every optimizer gets. The learning rate is the
top-level key ``lr`` (scaled by ``lr_scaling``, budget.py). Adding an optimizer is one row
of ``OPTIMIZERS`` and one file ``conf/optim/<name>.yaml``.

Weight decay per parameter group, as torchvision's reference training script sets it
(``--norm-weight-decay``, ``--bias-weight-decay``):

- ``norm``: every norm layer's own parameters (its scale gamma and shift beta, Batch
  Renorm's and RMSNorm's likewise) and the parameters a norm puts on the layer it
  normalizes (weight normalization's magnitudes g): ``optim.norm_weight_decay``;
- ``bias``: every other bias (of a Linear or Conv layer, the head's included):
  ``optim.bias_weight_decay``;
- ``weights``: everything else: ``optim.weight_decay``.

A norm's own parameters are its, whatever their names: BatchNorm's beta is in ``norm``,
not ``bias``. ``null`` means ``optim.weight_decay``. Groups with the same decay are one
group, in the model's parameter order, so a run with one decay builds the optimizer it
always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from omegaconf import MISSING

from . import checks
from .sites import norm_parameters

if TYPE_CHECKING:
    from torch import nn


@dataclass
class _Decays:
    name: str = MISSING
    weight_decay: float = MISSING
    """L2 penalty (SGD, Adam) or decoupled decay (AdamW) of the weights"""
    norm_weight_decay: Optional[float] = None
    """weight decay of the norm layers' own parameters (gamma, beta, weight norm's g); null: weight_decay"""
    bias_weight_decay: Optional[float] = None
    """weight decay of the other layers' biases; null: weight_decay"""


@dataclass
class SGDConfig(_Decays):
    name: str = "sgd"
    momentum: float = MISSING
    nesterov: bool = MISSING


@dataclass
class AdamConfig(_Decays):
    name: str = "adam"
    betas: List[float] = MISSING
    eps: float = MISSING


@dataclass
class AdamWConfig(AdamConfig):
    name: str = "adamw"


def _check_sgd(o) -> None:
    checks.number("optim.momentum", o.momentum, 0, 1, hi_open=True)
    if o.nesterov and o.momentum == 0:
        checks.fail("optim.nesterov", o.nesterov, "false when optim.momentum=0 (Nesterov needs momentum)")


def _check_adam(o) -> None:
    if len(o.betas) != 2 or not all(isinstance(b, float) and 0 <= b < 1 for b in o.betas):
        checks.fail("optim.betas", o.betas, "two numbers [beta1,beta2], each 0 <= beta < 1")
    checks.number("optim.eps", o.eps, 0, lo_open=True)


def check_decays(o) -> None:
    checks.number("optim.weight_decay", o.weight_decay, 0)
    for key in ("norm_weight_decay", "bias_weight_decay"):
        if o.get(key) is not None:
            checks.number(f"optim.{key}", o[key], 0)


def _sgd(groups, lr: float, o):
    # torch: only when a run builds it; this table is read at start-up (train --help)
    from torch.optim import SGD

    return SGD(groups, lr=lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov)


def _adam(groups, lr: float, o):
    # torch: only when a run builds it; this table is read at start-up (train --help)
    from torch.optim import Adam

    return Adam(groups, lr=lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)


def _adamw(groups, lr: float, o):
    # torch: only when a run builds it; this table is read at start-up (train --help)
    from torch.optim import AdamW

    return AdamW(groups, lr=lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)


@dataclass(frozen=True)
class Optimizer:
    label: str
    summary: str
    schema: type
    build: Callable[[Any, float, Any], Any]  # (parameter groups, lr, optim config) -> torch.optim.Optimizer
    check: Callable[[Any], None]


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer("SGD", "SGD with optim.momentum (0.9), optim.nesterov, optim.weight_decay (L2)", SGDConfig,
                     _sgd, _check_sgd),
    "adam": Optimizer("Adam", "Adam with optim.betas, optim.eps, optim.weight_decay (L2, in the gradient)",
                      AdamConfig, _adam, _check_adam),
    "adamw": Optimizer("AdamW", "Adam with decoupled weight decay (Loshchilov and Hutter 2019), optim.weight_decay",
                       AdamWConfig, _adamw, _check_adam),
}

GROUPS = ("weights", "norm", "bias")  # what each holds: the module docstring


def named_groups(model: "nn.Module") -> dict[str, list[str]]:
    """Parameter names by group (``GROUPS``), each in the model's order: the norm sites say
    which parameters are the norms' own (sites.norm_parameters)."""
    own = {id(p) for p in norm_parameters(model)}
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for name, p in model.named_parameters():
        group = "norm" if id(p) in own else "bias" if name.rpartition(".")[2] == "bias" else "weights"
        groups[group].append(name)
    return groups


def param_groups(model: "nn.Module", o) -> list[dict]:
    """The optimizer's parameter groups: one per distinct weight decay, parameters in the
    model's order (a single group when every decay is the same)."""
    decay = {"weights": o.weight_decay,
             "norm": o.weight_decay if o.get("norm_weight_decay") is None else o.norm_weight_decay,
             "bias": o.weight_decay if o.get("bias_weight_decay") is None else o.bias_weight_decay}
    group_of = {name: g for g, names in named_groups(model).items() for name in names}
    out: dict[float, dict] = {}
    for name, p in model.named_parameters():
        wd = float(decay[group_of[name]])
        out.setdefault(wd, {"params": [], "weight_decay": wd})["params"].append(p)
    return list(out.values())


def build_optimizer(cfg, model: "nn.Module", lr: float):
    """The optimizer ``cfg.optim`` over ``model``'s parameter groups, starting at ``lr``
    (the effective learning rate)."""
    return OPTIMIZERS[cfg.optim.name].build(param_groups(model, cfg.optim), lr, cfg.optim)
