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
- ``row``: the norm table's name of the norm there (``bn``, ``ln``, ...).

Probes, gradient norms and update ratios, init, weight standardization, the landscape
probe, precise BN, train-mode evaluation, the optimizer's parameter groups and the
summary (``sites`` in summary.json, read by the report) all go through these sites and
nothing else; what a norm is (batch statistics or not, its own parameters) is in its row
of the norm table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

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


def norm_sites(model: "nn.Module") -> list[NormSite]:
    """The sites ``model`` declared (none for a model built without any)."""
    return list(getattr(model, "norm_sites", []))


def layer_parameter(layer: "nn.Module", dotted: str):
    """The parameter ``dotted`` (``parametrizations.weight.original0``) of ``layer``, or None."""
    return dict(layer.named_parameters()).get(dotted)


def norm_parameters(model: "nn.Module") -> list:
    """The parameters that are the norms' own: every parameter of each site's norm layer,
    and those the norm's row says it puts on the layer it normalizes (weight norm's g)."""
    from .norms import NORMS

    seen: dict[int, object] = {}
    for site in norm_sites(model):
        for p in site.norm.parameters():
            seen.setdefault(id(p), p)
        for dotted in NORMS[site.row].layer_params if site.layer is not None else ():
            p = layer_parameter(site.layer, dotted)
            if p is not None:
                seen.setdefault(id(p), p)
    return list(seen.values())
