"""The contract between a model and everything that looks inside it: the model's norm sites.

A model declares, for every place where a norm layer sits (``build_model`` attaches the
list as ``model.norm_sites``), a ``NormSite``:

- ``name``: how tags name it (``act/<name>/pre_norm/std``, ``bn/<name>/variance_shift``);
- ``norm``: the norm layer (an identity for ``norm=none``, weight normalization, ...);
- ``layer``: the Linear/Conv whose output it normalizes (weight normalization and weight
  standardization change this layer's weight), or None where it normalizes something
  else (a Transformer's residual stream);
- ``act``: the activation that follows it in the block, or None;
- ``block``: the block it belongs to;
- ``row``: the norm table's name of the norm there (``bn``, ``ln``, ...);
- ``kind``: what its values are: ``vector`` (N, C), ``maps`` (N, C, H, W) or ``tokens``
  (N, T, C), per-feature statistics over everything but C;
- ``role``: ``residual`` for the last norm of a residual branch (``model.zero_init_residual``
  starts its scale at 0), else empty.

Probes, gradient norms and update ratios, init, weight standardization, the landscape
probe, precise BN, train-mode evaluation, the optimizer's parameter groups and the
summary (``sites`` in summary.json, read by the report) all go through these sites and
nothing else; what a norm is (batch statistics or not, its own parameters) is in its row
of the norm table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from .norms import NORMS

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True, eq=False)
class NormSite:
    name: str
    norm: "nn.Module"
    layer: Optional["nn.Module"]
    act: Optional["nn.Module"]
    block: str
    row: str
    kind: str = "vector"
    role: str = ""


def norm_sites(model: "nn.Module") -> list[NormSite]:
    """The sites ``model`` declared (none for a model built without any)."""
    return list(getattr(model, "norm_sites", []))


def describe(model: "nn.Module") -> list[dict]:
    """The sites as summary.json records them, for readers without the model (the report):
    each one's name, block, role, and the class of its norm, layer and activation."""
    names = {id(m): n for n, m in model.named_modules()}
    return [{"name": s.name, "block": s.block, "role": s.role, "norm": type(s.norm).__name__,
             "layer": None if s.layer is None else names.get(id(s.layer)),
             "act": None if s.act is None else type(s.act).__name__} for s in norm_sites(model)]


def features(x, kind: str):
    """A site's values with the features (channels) second: tokens (N, T, C) as the
    vectors (N * T, C), whose statistics are per channel over the batch and the tokens."""
    return x.reshape(-1, x.shape[-1]) if kind == "tokens" else x


def scale_and_shift(norm: "nn.Module") -> tuple:
    """A norm layer's scale gamma and shift beta (None where it has none): its first
    parameters named ``weight`` and ``bias``, however deep (a Transformer's BatchNorm sits
    inside a TokenNorm)."""
    named = {n.rpartition(".")[2]: p for n, p in reversed(list(norm.named_parameters()))}
    return named.get("weight"), named.get("bias")


def running_stats(model: "nn.Module") -> list[tuple[str, "nn.Module"]]:
    """(site name, the layer keeping running statistics) of every site whose norm uses
    batch statistics (its row's ``batch_stats``): what probes, precise BN and train-mode
    evaluation work on."""
    return [(site.name, m) for site in norm_sites(model) if NORMS[site.row].batch_stats
            for m in site.norm.modules() if getattr(m, "track_running_stats", False)
            and getattr(m, "running_mean", None) is not None]


def layer_parameter(layer: "nn.Module", dotted: str):
    """The parameter ``dotted`` (``parametrizations.weight.original0``) of ``layer``, or None."""
    return dict(layer.named_parameters()).get(dotted)


def norm_parameters(model: "nn.Module") -> list:
    """The parameters that are the norms' own: every parameter of each site's norm layer,
    and those the norm's row says it puts on the layer it normalizes (weight norm's g)."""
    seen: dict[int, object] = {}
    for site in norm_sites(model):
        for p in site.norm.parameters():
            seen.setdefault(id(p), p)
        for dotted in NORMS[site.row].layer_params if site.layer is not None else ():
            p = layer_parameter(site.layer, dotted)
            if p is not None:
                seen.setdefault(id(p), p)
    return list(seen.values())
