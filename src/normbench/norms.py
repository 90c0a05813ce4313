"""The normalization factory: a table from the names users type to constructors.

Adding a norm is one row here and one file in ``conf/norm/``. Each row builds the layer
for feature vectors ``(N, C)`` (the MLP) and for feature maps ``(N, C, H, W)`` (the CNN);
``None`` means the norm is not meaningful there.

| name | vectors (N, C)              | maps (N, C, H, W)                      |
| ---- | --------------------------- | -------------------------------------- |
| bn   | BatchNorm1d: per feature, over the batch | BatchNorm2d: per channel, over batch and space |
| ln   | LayerNorm(C): per sample, over features  | GroupNorm(1, C): per sample, over channels and space |
| in   | -                           | InstanceNorm2d: per sample and channel, over space |
| gn   | GroupNorm(G, C): per sample, per group of features | GroupNorm(G, C): per sample, per channel group + space |
| none | Identity                    | Identity                               |

LayerNorm on maps is ``GroupNorm(1, C)``: the same statistics as ``LayerNorm([C, H, W])``
with a per-channel (not per-position) scale and shift, so it does not depend on the
input size.

``cancels_bias`` says whether the norm subtracts a per-channel mean. When it does, a
bias on the Linear/Conv directly before it (``placement=pre``) is removed exactly by
the normalization, so the models build that layer without one. LayerNorm and
GroupNorm subtract a mean over several channels, which removes only part of a
per-channel bias, so the layer before them keeps its bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from torch import nn

# (num_features, norm config) -> layer. The layers are looked up in torch.nn when built,
# so that checking a config (validate.py) and `normbench train --help` do not import torch.
Builder = Callable[[int, object], "nn.Module"]


def _nn():
    from torch import nn

    return nn


@dataclass(frozen=True)
class NormSpec:
    label: str
    vectors: Optional[Builder]
    maps: Optional[Builder]
    cancels_bias: bool

    def build(self, kind: str) -> Optional[Builder]:
        return self.vectors if kind == "vector" else self.maps


def _identity(c: int, cfg: object) -> nn.Module:
    return _nn().Identity()


def _group(c: int, cfg) -> nn.Module:
    return _nn().GroupNorm(cfg.groups, c, eps=cfg.eps, affine=cfg.affine)


NORMS: dict[str, NormSpec] = {
    "bn": NormSpec(
        "BatchNorm",
        vectors=lambda c, cfg: _nn().BatchNorm1d(c, eps=cfg.eps, momentum=cfg.momentum, affine=cfg.affine),
        maps=lambda c, cfg: _nn().BatchNorm2d(c, eps=cfg.eps, momentum=cfg.momentum, affine=cfg.affine),
        cancels_bias=True,
    ),
    "ln": NormSpec(
        "LayerNorm",
        vectors=lambda c, cfg: _nn().LayerNorm(c, eps=cfg.eps, elementwise_affine=cfg.affine),
        maps=lambda c, cfg: _nn().GroupNorm(1, c, eps=cfg.eps, affine=cfg.affine),
        cancels_bias=False,
    ),
    "in": NormSpec(
        "InstanceNorm",
        vectors=None,
        maps=lambda c, cfg: _nn().InstanceNorm2d(c, eps=cfg.eps, affine=cfg.affine),
        cancels_bias=True,
    ),
    "gn": NormSpec("GroupNorm", vectors=_group, maps=_group, cancels_bias=False),
    "none": NormSpec("no normalization", vectors=_identity, maps=_identity, cancels_bias=False),
}


def make_norm(cfg, num_features: int, kind: str) -> nn.Module:
    """Build the norm layer ``cfg.name`` for ``num_features`` features of ``kind``
    (``"vector"`` or ``"maps"``). Combinations are validated before this is called."""
    builder = NORMS[cfg.name].build(kind)
    if builder is None:
        raise ValueError(f"norm={cfg.name} has no layer for {kind}")
    return builder(num_features, cfg)
