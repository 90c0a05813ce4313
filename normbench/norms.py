"""The normalization axis: a table from the names users type (``norm=bn``) to everything
about that norm. Adding a norm is one row of ``NORMS`` and one file ``conf/norm/<name>.yaml``
(the README's "Adding a norm" shows both).

A row (``Norm``) carries:

- ``schema``: the dataclass of the norm's keys (``norm.eps``, ...), registered in Hydra's
  ConfigStore as ``schema/norm/<name>``, which the YAML file extends;
- ``vectors`` / ``maps`` / ``tokens``: builders of the layer for feature vectors ``(N, C)``
  (the MLP), feature maps ``(N, C, H, W)`` (the CNN, ResNet, VGG) and a Transformer's
  tokens ``(N, T, C)`` (the ViT), or None where the norm is meaningless there;
- ``batch_stats``: whether it normalises with statistics of the batch (and keeps running
  ones for eval mode): what probes, precise BN and train-mode evaluation look for;
- ``cancels_bias``: whether the norm subtracts a per-channel mean (then the Linear/Conv
  right before it, ``placement=pre``, is built without a bias: the mean removes it exactly);
- ``ignores``: top-level settings that cannot change the network with this norm. With
  ``norm=none`` an identity sits in the norm's place, so ``placement=pre`` and ``post``
  are the same network: a sweep trains it once per seed and the report makes one group
  of it (``identity.canonical``). Keys of other norms cannot be set with this one anyway;
- ``same``: the same training written one way, where two settings of the row's own keys
  mean the same (ghost batches as large as the batch are the batch: ``ghost_batch`` null);
- ``check``: constraints the types cannot express (``norm.groups`` must divide the widths);
- ``min_batch``: the smallest training batch it can normalise;
- ``weights``: what it does to the layer whose output it normalizes (weight normalization,
  weight standardization), and ``layer_params``: the parameters it puts there, which are
  its own (the optimizer's ``norm`` group).

A norm's scale gamma exists where its config has ``affine=true`` (``model.zero_init_residual``
needs it).

| name | vectors (N, C)            | maps (N, C, H, W)                | tokens (N, T, C)              |
| ---- | ------------------------- | -------------------------------- | ----------------------------- |
| bn   | BatchNorm1d: over batch   | BatchNorm2d: over batch, space   | BatchNorm1d: batch and tokens |
| brn  | Batch Renorm (layers.py)  | Batch Renorm, 2d                 | as bn                         |
| ln   | LayerNorm(C)              | GroupNorm(1, C): channels, space | LayerNorm(C): per token       |
| rms  | RMSNorm(C)                | RMSNorm2d (layers.py)            | RMSNorm(C): per token         |
| in   | -                         | InstanceNorm2d: space            | -                             |
| gn   | GroupNorm(G, C)           | GroupNorm(G, C): groups, space   | GroupNorm(G, C): per token    |
| wn   | Identity; weight_norm     | Identity; weight_norm            | - (no one layer before it)    |
| none | Identity                  | Identity                         | Identity                      |

``bn`` and ``brn`` take ``norm.ghost_batch`` (ghost batches); ``ln``, ``gn`` and ``none``
take ``norm.weight_standardization`` on models with feature maps (a row's ``weights`` hook changes the
Linear/Conv before the norm: weight normalization, weight standardization).

LayerNorm on maps is ``GroupNorm(1, C)``: LayerNorm's statistics over ``[C, H, W]`` with a
per-channel scale and shift, so it does not depend on the input size. LayerNorm and
GroupNorm subtract a mean over several channels, which removes only part of a per-channel
bias, so the layer before them keeps its bias.

Layers are looked up in torch.nn when built, so checking a config and ``normbench train
--help`` import no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from typing import TYPE_CHECKING, Any, Callable, Optional

from omegaconf import MISSING

from . import checks
from .errors import UsageError

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[[int, Any], "nn.Module"]  # (num_features, norm config) -> layer


def _nn():
    # torch: only when a layer is built; this table is read at start-up (train --help)
    from torch import nn

    return nn


# --- the schemas: one dataclass per norm, the string under a field is its description ---


@dataclass
class BatchNormConfig:
    name: str = "bn"
    momentum: Optional[float] = MISSING
    """running-statistics momentum (PyTorch convention); null for a cumulative average"""
    eps: float = MISSING
    affine: bool = MISSING
    """learn a per-feature scale (gamma) and shift (beta)"""
    precise_bn: bool = MISSING
    """before each evaluation, recompute the population statistics over training batches
    (weights frozen, dropout off) in place of the running averages; both accuracies are kept"""
    precise_bn_batches: int = MISSING
    """training batches precise BN averages over (all of the training split, if it has fewer)"""
    ghost_batch: Optional[int] = None
    """normalise each training batch in ghost batches of this many samples, each with its own
    statistics (Hoffer et al. 2017); the batch size must be a multiple of it; null: the whole batch"""


@dataclass
class BatchRenormConfig(BatchNormConfig):
    name: str = "brn"
    r_max: float = MISSING
    """the largest correction r = sigma_batch / sigma_running (and 1 / r_max the smallest), after the warm-up"""
    d_max: float = MISSING
    """the largest correction |d| = |mu_batch - mu_running| / sigma_running, after the warm-up"""
    warmup_steps: int = MISSING
    """training batches over which r_max grows from 1 and d_max from 0 (BatchNorm) to their values"""


@dataclass
class LayerNormConfig:
    name: str = "ln"
    eps: float = MISSING
    affine: bool = MISSING
    weight_standardization: bool = MISSING
    """models with feature maps (cnn, vgg, resnet): each conv filter before a norm standardized (zero mean,
    unit variance) in every forward pass (Qiao et al. 2019)"""


@dataclass
class RMSNormConfig:
    name: str = "rms"
    eps: float = MISSING
    affine: bool = MISSING
    """learn a per-feature (per-channel) scale"""


@dataclass
class InstanceNormConfig:
    name: str = "in"
    eps: float = MISSING
    affine: bool = MISSING


@dataclass
class GroupNormConfig:
    name: str = "gn"
    groups: int = MISSING
    """number of groups; must divide the width (MLP, ViT) or every channel count (CNN, VGG, ResNet)"""
    eps: float = MISSING
    affine: bool = MISSING
    weight_standardization: bool = MISSING
    """models with feature maps (cnn, vgg, resnet): each conv filter before a norm standardized (zero mean,
    unit variance) in every forward pass (Qiao et al. 2019)"""


@dataclass
class NoNormConfig:
    name: str = "none"
    weight_standardization: bool = MISSING
    """models with feature maps (cnn, vgg, resnet): each conv filter before a norm standardized (zero mean,
    unit variance) in every forward pass (Qiao et al. 2019)"""


@dataclass
class WeightNormConfig:
    name: str = "wn"


# --- constraints beyond the types ---------------------------------------------------------


def _common_divisors(widths: list[int]) -> list[int]:
    g = 0
    for w in widths:
        g = gcd(g, w)
    return [d for d in range(1, g + 1) if g % d == 0]


def _check_groups(norm, widths: list[int], kind: str, what: str) -> None:
    """GroupNorm: ``norm.groups`` divides every hidden width; on vectors (and tokens), at
    least two features per group (one feature normalised alone is always 0)."""
    checks.integer("norm.groups", norm.groups, 1)
    if any(w % norm.groups for w in widths):
        divisors = ", ".join(map(str, _common_divisors(widths)))
        raise UsageError(f"norm.groups={norm.groups} does not divide {what}; "
                         f"allowed: a number of groups that divides every hidden width: {divisors}")
    if kind in ("vector", "tokens") and min(widths) // norm.groups < 2:
        raise UsageError(f"norm.groups={norm.groups} with {what} normalises single features, which makes every "
                         f"output 0; allowed: at least 2 features per group (width / groups >= 2)")


def _at_least_two_features(result: str) -> Callable:
    """LayerNorm and RMSNorm on vectors: at least two features (one feature normalised alone
    makes ``result``)."""
    def check(norm, widths: list[int], kind: str, what: str) -> None:
        if kind in ("vector", "tokens") and min(widths) < 2:
            raise UsageError(f"{what} with norm={norm.name} normalises single features, which makes {result}; "
                             f"allowed: at least 2 features per group (width / groups >= 2)")
    return check


def _check_batchnorm(norm, widths: list[int], kind: str, what: str) -> None:
    checks.integer("norm.precise_bn_batches", norm.precise_bn_batches, 1)


def _check_renorm(norm, widths: list[int], kind: str, what: str) -> None:
    _check_batchnorm(norm, widths, kind, what)
    for key, lo in (("r_max", 1), ("d_max", 0), ("warmup_steps", 0)):
        checks.number(f"norm.{key}", norm[key], lo)


# --- what a norm does to the weights of the layer before it ------------------------------


def _weight_norm(layer, norm, kind: str):
    # layers.py imports torch: only when a layer is built, not at start-up
    from .layers import weight_normalize

    return weight_normalize(layer)


def _standardized(layer, norm, kind: str):
    """Weight standardization of a conv layer's filters, when asked for (models with feature maps)."""
    if norm.get("weight_standardization", False) and kind == "maps":
        # layers.py imports torch: only when a layer is built, not at start-up
        from .layers import standardize_weights

        return standardize_weights(layer)
    return layer


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Norm:
    label: str
    summary: str  # one line: what it normalises over (train --help, the README)
    schema: type
    vectors: Optional[Builder]
    maps: Optional[Builder]
    tokens: Optional[Builder]
    cancels_bias: bool
    batch_stats: bool = False
    ignores: tuple[str, ...] = ()
    same: Optional[Callable[[dict], dict]] = None  # a resolved config -> the same training, written one way
    check: Optional[Callable[[Any, list[int], str, str], None]] = None  # (norm cfg, widths, kind, what)
    min_batch: int = 1
    weights: Optional[Callable[[Any, Any, str], Any]] = None  # (hidden Linear/Conv, norm cfg, kind) -> the layer
    layer_params: tuple[str, ...] = ()  # parameters it puts on the layer it normalizes: its own (optim's norm group)
    needs: str = "features"  # what it works on, said where a model's kind has no form of it (validate.py)

    def build(self, kind: str) -> Optional[Builder]:
        return {"vector": self.vectors, "maps": self.maps, "tokens": self.tokens}[kind]


def _per_token(vectors: Builder, over_tokens: bool = False) -> Builder:
    """A norm of feature vectors for tokens (N, T, C) (layers.TokenNorm): each token alone,
    or ``over_tokens``, the batch's tokens together (BatchNorm's statistics)."""
    def build(c: int, cfg) -> nn.Module:
        # layers.py imports torch: only when a layer is built, not at start-up
        from .layers import TokenNorm

        return TokenNorm(vectors(c, cfg), over_tokens)
    return build


def _identity(c: int, cfg) -> nn.Module:
    return _nn().Identity()


def _group(c: int, cfg) -> nn.Module:
    return _nn().GroupNorm(cfg.groups, c, eps=cfg.eps, affine=cfg.affine)


def _whole_batch_ghosts(config: dict) -> dict:
    """Ghost batches at least as large as the batch are the batch itself."""
    ghost, batch = config["norm"].get("ghost_batch"), config.get("batch_size")
    if isinstance(ghost, int) and isinstance(batch, int) and ghost >= batch:
        return {**config, "norm": {**config["norm"], "ghost_batch": None}}
    return config


def _batchnorm(kind: str) -> Builder:
    def build(c: int, cfg) -> nn.Module:
        options = dict(eps=cfg.eps, momentum=cfg.momentum, affine=cfg.affine)
        if cfg.get("ghost_batch"):
            # layers.py imports torch: only when a layer is built, not at start-up
            from .layers import GhostBatchNorm1d, GhostBatchNorm2d

            return (GhostBatchNorm1d if kind == "vector" else GhostBatchNorm2d)(c, cfg.ghost_batch, **options)
        return (_nn().BatchNorm1d if kind == "vector" else _nn().BatchNorm2d)(c, **options)
    return build


def _renorm(kind: str) -> Builder:
    def build(c: int, cfg) -> nn.Module:
        # layers.py imports torch: only when a layer is built, not at start-up
        from .layers import BatchRenorm1d, BatchRenorm2d

        return (BatchRenorm1d if kind == "vector" else BatchRenorm2d)(
            c, r_max=cfg.r_max, d_max=cfg.d_max, warmup_steps=cfg.warmup_steps, ghost_batch=cfg.get("ghost_batch"),
            eps=cfg.eps, momentum=cfg.momentum, affine=cfg.affine)
    return build


def _layer_norm(c: int, cfg) -> nn.Module:
    return _nn().LayerNorm(c, eps=cfg.eps, elementwise_affine=cfg.affine)


def _rms_norm(c: int, cfg) -> nn.Module:
    return _nn().RMSNorm(c, eps=cfg.eps, elementwise_affine=cfg.affine)


def _rms_maps(c: int, cfg) -> nn.Module:
    # layers.py imports torch: only when a layer is built, not at start-up
    from .layers import RMSNorm2d

    return RMSNorm2d(c, eps=cfg.eps, affine=cfg.affine)


NORMS: dict[str, Norm] = {
    "bn": Norm(
        "BatchNorm", "per feature (channel), over the batch (and space); running statistics in eval mode",
        BatchNormConfig, vectors=_batchnorm("vector"), maps=_batchnorm("maps"),
        tokens=_per_token(_batchnorm("vector"), over_tokens=True), cancels_bias=True, batch_stats=True,
        check=_check_batchnorm, min_batch=2, same=_whole_batch_ghosts,
    ),
    "brn": Norm(
        "Batch Renormalization", "BatchNorm corrected towards its running statistics in training (Ioffe "
        "2017)", BatchRenormConfig,
        vectors=_renorm("vector"), maps=_renorm("maps"), tokens=_per_token(_renorm("vector"), over_tokens=True),
        cancels_bias=True, batch_stats=True, check=_check_renorm, min_batch=2, same=_whole_batch_ghosts,
    ),
    "ln": Norm(
        "LayerNorm", "per sample, over all its features (channels and space)", LayerNormConfig,
        vectors=_layer_norm, maps=lambda c, cfg: _nn().GroupNorm(1, c, eps=cfg.eps, affine=cfg.affine),
        tokens=_layer_norm, cancels_bias=False, check=_at_least_two_features("every output 0"),
        weights=_standardized,
    ),
    "rms": Norm(
        "RMSNorm", "per sample, by the root mean square of its features (channels and space), no mean",
        RMSNormConfig,
        vectors=_rms_norm, maps=_rms_maps, tokens=_rms_norm, cancels_bias=False,
        check=_at_least_two_features("every output +-1"),
    ),
    "in": Norm(
        "InstanceNorm", "per sample and channel, over space (feature maps only: cnn, vgg, resnet)", InstanceNormConfig,
        vectors=None, maps=lambda c, cfg: _nn().InstanceNorm2d(c, eps=cfg.eps, affine=cfg.affine), tokens=None,
        cancels_bias=True, needs="feature maps (each channel over space)",
    ),
    "gn": Norm("GroupNorm", "per sample, over groups of norm.groups channels (and space)", GroupNormConfig,
               vectors=_group, maps=_group, tokens=_per_token(_group), cancels_bias=False, check=_check_groups,
               weights=_standardized),
    "wn": Norm("weight normalization", "the weight of each layer before a norm site as g * v / ||v||; no "
               "activation norm",
               WeightNormConfig, vectors=_identity, maps=_identity, tokens=None, cancels_bias=False,
               ignores=("placement",), needs="the weight of the layer each norm follows",
               weights=_weight_norm, layer_params=("parametrizations.weight.original0",)),
    "none": Norm("no normalization", "an identity in the norm's place (placement has no effect)", NoNormConfig,
                 vectors=_identity, maps=_identity, tokens=_identity, cancels_bias=False, ignores=("placement",),
                 weights=_standardized),
}


def make_norm(cfg, num_features: int, kind: str) -> nn.Module:
    """The norm layer ``cfg.name`` for ``num_features`` features of ``kind`` (``"vector"``,
    ``"maps"`` or ``"tokens"``). Combinations are validated before this is called."""
    builder = NORMS[cfg.name].build(kind)
    if builder is None:
        raise ValueError(f"norm={cfg.name} has no layer for {kind}")
    return builder(num_features, cfg)
