"""The model axis: a table from ``model=<name>`` to its schema, its builder and what it
needs; and the small tables of activations and initialisations. Adding a model is one
row of ``MODELS`` and one file ``conf/model/<name>.yaml``.

Every hidden block is an ``nn.Sequential`` with named children, so module names are
stable and readable in metric tags (``grad_norm/block2.linear``):

    placement=pre:   linear|conv -> norm -> act [-> drop] [-> pool]
    placement=post:  linear|conv -> act -> norm [-> drop] [-> pool]

``norm`` is always there (``nn.Identity`` for ``norm=none``), so probes find the same
places in every model. The input and the output layer get no normalization.

MLP:  flatten -> block1..block{depth} -> head            x: (N, *input_shape) -> (N, classes)
CNN:  block1..block{len(channels)} -> gap -> flatten -> head
      3x3 convs with padding 1; 2x2 max-pooling after every block but the last while
      the maps are at least 4 wide, so 8x8 digits, 28x28 and 32x32 inputs all work.

torch is imported only when a model is built, so checking a config imports none.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from math import prod
from typing import TYPE_CHECKING, Any, Callable, List

from omegaconf import MISSING

from . import checks
from .checks import option
from .norms import NORMS, make_norm
from .sites import NormSite

if TYPE_CHECKING:
    from torch import nn

# activation name -> its torch.nn class name; saturation is measured for the bounded ones (probes.py)
ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU"}
Activation = Enum("Activation", {name: name for name in ACTIVATIONS})  # the type Hydra checks values against


class Placement(Enum):
    pre = "pre"
    """Linear/Conv -> norm -> act"""
    post = "post"
    """Linear/Conv -> act -> norm"""


# --- the schemas ---------------------------------------------------------------------------


@dataclass
class MLPConfig:
    name: str = "mlp"
    depth: int = MISSING
    """number of hidden blocks (Linear -> norm/act -> dropout)"""
    width: int = MISSING
    """units in every hidden block"""
    activation: Activation = MISSING
    """hidden activation"""


@dataclass
class CNNConfig:
    name: str = "cnn"
    channels: List[int] = MISSING
    """output channels of each 3x3 conv block; 2x2 max-pooling follows every block but the last"""
    activation: Activation = MISSING
    """hidden activation"""



def _check_mlp(m) -> None:
    for key in ("depth", "width"):
        checks.integer(f"model.{key}", m[key], 1)


def _check_cnn(m) -> None:
    if len(m.channels) == 0 or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1
                                       for c in m.channels):
        checks.fail("model.channels", m.channels, "a non-empty list of positive integers, e.g. [32,64]")


# --- the builders ----------------------------------------------------------------------------


def hidden_block(layer_name: str, layer: nn.Module, norm: nn.Module, act: nn.Module,
                 placement: str, dropout: float, pool: bool) -> nn.Sequential:
    from torch import nn

    parts = [(layer_name, layer)]
    parts += [("norm", norm), ("act", act)] if placement == "pre" else [("act", act), ("norm", norm)]
    if dropout > 0:
        parts.append(("drop", nn.Dropout(dropout)))
    if pool:
        parts.append(("pool", nn.MaxPool2d(2)))
    return nn.Sequential(OrderedDict(parts))


def _mlp(cfg, input_shape: tuple[int, ...], bias: bool, act: Callable[[], nn.Module]) -> tuple[list, int]:
    from torch import nn

    blocks: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    width_in = prod(input_shape)
    for i in range(cfg.model.depth):
        w = cfg.model.width
        blocks.append((f"block{i + 1}", hidden_block(
            "linear", nn.Linear(width_in, w, bias=bias), make_norm(cfg.norm, w, "vector"), act(),
            option(cfg.placement), cfg.dropout, pool=False)))
        width_in = w
    return blocks, width_in


def _cnn(cfg, input_shape: tuple[int, ...], bias: bool, act: Callable[[], nn.Module]) -> tuple[list, int]:
    from torch import nn

    blocks: list[tuple[str, Any]] = []
    channels_in, side = input_shape[0], min(input_shape[1:])
    last = len(cfg.model.channels) - 1
    for i, c in enumerate(cfg.model.channels):
        pool = i < last and side >= 4
        blocks.append((f"block{i + 1}", hidden_block(
            "conv", nn.Conv2d(channels_in, c, 3, padding=1, bias=bias), make_norm(cfg.norm, c, "maps"), act(),
            option(cfg.placement), cfg.dropout, pool=pool)))
        channels_in, side = c, side // 2 if pool else side
    return blocks + [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())], channels_in


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    label: str
    summary: str
    schema: type
    kind: str  # "vector" (its norms see (N, C)) or "maps" ((N, C, H, W)): which builder of a norm it uses
    needs_images: bool  # inputs must be (C, H, W)
    widths: Callable[[Any], list[int]]  # model config -> feature (channel) count of each hidden block
    what: Callable[[Any], str]  # model config -> the setting the widths come from, as users type it
    blocks: Callable[..., tuple]  # (cfg, input_shape, bias, act) -> ([(name, module), ...], width into the head)
    check: Callable[[Any], None]


MODELS: dict[str, Model] = {
    "mlp": Model("MLP", "flatten -> model.depth x (Linear -> norm/act -> dropout) -> Linear head", MLPConfig,
                 kind="vector", needs_images=False, widths=lambda m: [m.width] * m.depth,
                 what=lambda m: f"model.width={m.width}", blocks=_mlp, check=_check_mlp),
    "cnn": Model("CNN", "3x3 conv blocks of model.channels (norm/act, dropout, 2x2 max-pool) -> global average "
                 "pool -> Linear head", CNNConfig, kind="maps", needs_images=True,
                 widths=lambda m: list(m.channels),
                 what=lambda m: "model.channels=[" + ",".join(map(str, m.channels)) + "]",
                 blocks=_cnn, check=_check_cnn),
}


def _kaiming(w) -> None:
    from torch import nn

    nn.init.kaiming_normal_(w, nonlinearity="relu")


def _xavier(w) -> None:
    from torch import nn

    nn.init.xavier_uniform_(w)


# init name -> what it does to each Linear/Conv weight (biases are zeroed); None keeps PyTorch's
INITS: dict[str, Callable | None] = {"default": None, "xavier": _xavier, "kaiming": _kaiming}
Init = Enum("Init", {name: name for name in INITS})


def build_model(cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model ``cfg.model`` with ``cfg.norm`` at ``cfg.placement``, initialised per ``cfg.init``."""
    from torch import nn

    act_class = getattr(nn, ACTIVATIONS[option(cfg.model.activation)])
    # A per-channel mean subtraction right after the layer makes its bias redundant.
    bias = not (option(cfg.placement) == "pre" and NORMS[cfg.norm.name].cancels_bias)
    blocks, width = MODELS[cfg.model.name].blocks(cfg, input_shape, bias, act_class)
    model = nn.Sequential(OrderedDict([*blocks, ("head", nn.Linear(width, num_classes))]))
    model.norm_sites = [NormSite(name, block.norm, block[0], block.act, name, cfg.norm.name)
                        for name, block in hidden_blocks(model)]
    initialise(model, option(cfg.init))
    norm = NORMS[cfg.norm.name]
    if norm.weights is not None:  # the norm changes the hidden layers' weights (weight norm or standardization)
        for site in model.norm_sites:
            norm.weights(site.layer, cfg.norm, MODELS[cfg.model.name].kind)
    return model


def hidden_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, block) of every hidden block: ``block1``, ``block2``, ..., each with its
    ``norm`` and ``act`` places."""
    return [(name, m) for name, m in model.named_children() if hasattr(m, "norm") and hasattr(m, "act")]


def initialise(model: nn.Module, init: str) -> None:
    """``default`` keeps PyTorch's; ``xavier`` is Glorot-uniform, ``kaiming`` He-normal
    (fan-in, ReLU gain), both with zero biases. Norm layers keep scale 1 and shift 0."""
    from torch import nn

    weights = INITS[init]
    if weights is None:
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            weights(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def parameterised_layers(model: nn.Module) -> list[tuple[str, list]]:
    """(layer name, its parameters) for every module that owns parameters, in order; the
    parameters of a parametrization (weight norm's g and v) count as their layer's."""
    layers: dict[str, list] = {}
    for name, p in model.named_parameters():
        owner = name.rpartition(".")[0]
        layers.setdefault(owner.split(".parametrizations.")[0], []).append(p)
    return list(layers.items())
