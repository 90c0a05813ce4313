"""The model axis: a table from ``model=<name>`` to its schema, its builder and what it
needs; and the small tables of activations and initialisations. Adding a model is one
row of ``MODELS`` and one file ``conf/model/<name>.yaml``.

Every builder returns the network and its norm sites (sites.py): each place a norm sits,
the layer whose output it normalizes, the activation after it and its block. Everything
that looks inside a network goes through the sites, so a model is free in its shape.

The MLP, the CNN and VGG are stacks of hidden blocks, each an ``nn.Sequential`` with named
children, so module names are stable and readable in metric tags (``grad_norm/block2.linear``):

    placement=pre:   linear|conv -> norm -> act [-> drop] [-> pool]
    placement=post:  linear|conv -> act -> norm [-> drop] [-> pool]

``norm`` is always there (``nn.Identity`` for ``norm=none``), so probes find the same
places in every model. The input and the output layer get no normalization (but for
Pre-LN's final norm, vit.py).

MLP:  flatten -> block1..block{depth} -> head            x: (N, *input_shape) -> (N, classes)
CNN:  block1..block{len(channels)} -> gap -> flatten -> head
      3x3 convs with padding 1; 2x2 max-pooling after every block but the last while
      the maps are at least 4 wide, so 8x8 digits, 28x28 and 32x32 inputs all work.
VGG:  VGG-11/13/16 for 32x32 images (Simonyan and Zisserman 2015, as CIFAR code has it):
      3x3 conv blocks of 64..512 channels (times ``model.width_multiplier``), a 2x2
      max-pool at the end of each of the five stages (32 -> 1 for 32x32) as long as the
      next conv still sees maps at least 2 wide, and at the last, so a smaller input (the
      8x8 digits: 8, 4, 2, 2, 2 -> 1) runs its last stages at 2x2 instead of being
      refused; global average pool -> Linear head (one linear, as Santurkar et al.).
ResNet: resnet.py.  ViT: vit.py.

torch is imported only when a model is built, so checking a config imports none.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from math import prod
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from omegaconf import MISSING

from . import checks
from .checks import option
from .norms import NORMS, make_norm
from .sites import NormSite, norm_sites, scale_and_shift

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



@dataclass
class VGGConfig:
    name: str = "vgg"
    depth: int = MISSING
    """11, 13 or 16: VGG-11 (configuration A), VGG-13 (B), VGG-16 (D)"""
    width_multiplier: float = MISSING
    """every conv's channels (64 ... 512) times this, at least 1"""
    activation: Activation = MISSING
    """hidden activation"""


@dataclass
class ResNetConfig:
    name: str = "resnet"
    depth: int = MISSING
    """6n+2 (20, 32, 44, 56, 110): n basic blocks in each of three stages of 16, 32, 64 channels"""
    shortcut: str = MISSING
    """A: identity, subsampled and zero-padded where the shape changes; B: a 1x1 projection with its own norm there"""
    zero_init_residual: bool = MISSING
    """each block's last norm scale (gamma) starts at 0, so each block starts as the identity (Goyal et al. 2017)"""
    preact: bool = MISSING
    """the pre-activation block (He et al. 2016b): norm -> act -> conv, twice, then the addition"""
    activation: Activation = MISSING
    """hidden activation"""


@dataclass
class ViTConfig:
    name: str = "vit"
    patch: int = MISSING
    """patches of patch x patch pixels are the tokens (it must divide the image's sides)"""
    depth: int = MISSING
    """Transformer blocks"""
    dim: int = MISSING
    """token width"""
    heads: int = MISSING
    """attention heads (they divide dim)"""
    mlp_ratio: float = MISSING
    """the MLP's hidden width over dim"""
    activation: Activation = MISSING
    """the MLP's activation"""


def _check_mlp(m) -> None:
    for key in ("depth", "width"):
        checks.integer(f"model.{key}", m[key], 1)


def _check_cnn(m) -> None:
    if len(m.channels) == 0 or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1
                                       for c in m.channels):
        checks.fail("model.channels", m.channels, "a non-empty list of positive integers, e.g. [32,64]")


VGG_LAYERS = {  # channels of each conv at width 1; "M": a stage ends (a 2x2 max-pool)
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def vgg_channels(m) -> list[int]:
    """Each conv's output channels of VGG-``model.depth`` at ``model.width_multiplier``."""
    return [max(1, round(c * m.width_multiplier)) for c in VGG_LAYERS[m.depth] if c != "M"]


def _check_vgg(m) -> None:
    if m.depth not in VGG_LAYERS:
        checks.fail("model.depth", m.depth, ", ".join(map(str, VGG_LAYERS)) + " (VGG-11, VGG-13, VGG-16)")
    checks.number("model.width_multiplier", m.width_multiplier, 0, lo_open=True)


def _check_resnet(m) -> None:
    if not (isinstance(m.depth, int) and m.depth >= 8 and (m.depth - 2) % 6 == 0):
        checks.fail("model.depth", m.depth, "6n+2 with n >= 1: 8, 14, 20, 32, 44, 56, 110, ...")
    if m.shortcut not in ("A", "B"):
        checks.fail("model.shortcut", m.shortcut, "A (identity, zero-padded) or B (1x1 projection with its norm)")


def _check_vit(m) -> None:
    for key in ("patch", "depth", "dim", "heads"):
        checks.integer(f"model.{key}", m[key], 1)
    if m.dim % m.heads:
        checks.fail("model.heads", m.heads, f"a divisor of model.dim={m.dim} (each head takes dim / heads)")
    checks.number("model.mlp_ratio", m.mlp_ratio, 0, lo_open=True)


def _check_vit_data(m, input_shape: tuple[int, ...]) -> None:
    if any(side % m.patch for side in input_shape[1:]):
        checks.fail("model.patch", m.patch, f"a divisor of the images' sides ({input_shape[1]}x{input_shape[2]})")


# --- the builders ----------------------------------------------------------------------------


def hidden_block(layer_name: str, layer: nn.Module, norm: nn.Module, act: nn.Module,
                 placement: str, dropout: float, pool: bool) -> nn.Sequential:
    # torch: only when a model is built; this table is read at start-up (train --help)
    from torch import nn

    parts = [(layer_name, layer)]
    parts += [("norm", norm), ("act", act)] if placement == "pre" else [("act", act), ("norm", norm)]
    if dropout > 0:
        parts.append(("drop", nn.Dropout(dropout)))
    if pool:
        parts.append(("pool", nn.MaxPool2d(2)))
    return nn.Sequential(OrderedDict(parts))


def _blocks(make_blocks: Callable) -> Callable:
    """The builder of a stack of hidden blocks (``make_blocks`` gives them and the width
    into the head): the blocks, a Linear head, and a norm site at each block's norm."""
    def build(cfg, input_shape: tuple[int, ...], num_classes: int, bias: bool, act) -> tuple:
        # torch: only when a model is built; this table is read at start-up (train --help)
        from torch import nn

        blocks, width = make_blocks(cfg, input_shape, bias, act)
        model = nn.Sequential(OrderedDict([*blocks, ("head", nn.Linear(width, num_classes))]))
        kind = MODELS[cfg.model.name].kind
        sites = [NormSite(name, b.norm, b[0], b.act, name, cfg.norm.name, kind)
                 for name, b in model.named_children() if hasattr(b, "norm") and hasattr(b, "act")]
        return model, sites
    return build


def _resnet(cfg, input_shape: tuple[int, ...], num_classes: int, bias: bool, act) -> tuple:
    # resnet.py imports torch: only when a model is built, not at start-up
    from .resnet import build_resnet

    return build_resnet(cfg, input_shape, num_classes, bias, act)


def _vit(cfg, input_shape: tuple[int, ...], num_classes: int, bias: bool, act) -> tuple:
    # vit.py imports torch: only when a model is built, not at start-up
    from .vit import build_vit

    return build_vit(cfg, input_shape, num_classes, act)


def _mlp(cfg, input_shape: tuple[int, ...], bias: bool, act: Callable[[], nn.Module]) -> tuple[list, int]:
    # torch: only when a model is built; this table is read at start-up (train --help)
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
    # torch: only when a model is built; this table is read at start-up (train --help)
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


def _vgg(cfg, input_shape: tuple[int, ...], bias: bool, act: Callable[[], nn.Module]) -> tuple[list, int]:
    # torch: only when a model is built; this table is read at start-up (train --help)
    from torch import nn

    blocks: list[tuple[str, Any]] = []
    channels_in, side = input_shape[0], min(input_shape[1:])
    layers, channels = VGG_LAYERS[cfg.model.depth], iter(vgg_channels(cfg.model))
    for i, c in enumerate(layers):
        if c == "M":
            continue
        c = next(channels)
        end = i + 1 < len(layers) and layers[i + 1] == "M"  # a stage ends here
        pool = end and (side >= 4 or i + 2 == len(layers))  # the next conv sees 2x2 at least; the last pools
        blocks.append((f"block{len(blocks) + 1}", hidden_block(
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
    kind: str  # its norms see "vector" (N, C), "maps" (N, C, H, W) or "tokens" (N, T, C): which builder of a norm
    needs_images: bool  # inputs must be (C, H, W)
    widths: Callable[[Any], list[int]]  # model config -> feature (channel) count at each norm site
    what: Callable[[Any], str]  # model config -> the setting the widths come from, as users type it
    build: Callable[..., tuple]  # (cfg, input_shape, classes, bias, act class) -> (nn.Module, [NormSite, ...])
    check: Callable[[Any], None]
    check_data: Optional[Callable[[Any, tuple], None]] = None  # (model cfg, input shape): what needs the data
    residual: bool = False  # has residual blocks: model.zero_init_residual applies


def _channels(key: str) -> Callable[[Any], str]:
    return lambda m: f"model.{key}=[" + ",".join(map(str, m[key])) + "]"


MODELS: dict[str, Model] = {
    "mlp": Model("MLP", "flatten -> model.depth x (Linear -> norm/act -> dropout) -> Linear head", MLPConfig,
                 kind="vector", needs_images=False, widths=lambda m: [m.width] * m.depth,
                 what=lambda m: f"model.width={m.width}", build=_blocks(_mlp), check=_check_mlp),
    "cnn": Model("CNN", "3x3 conv blocks of model.channels (norm/act, dropout, 2x2 max-pool) -> global average "
                 "pool -> Linear head", CNNConfig, kind="maps", needs_images=True,
                 widths=lambda m: list(m.channels), what=_channels("channels"), build=_blocks(_cnn),
                 check=_check_cnn),
    "vgg": Model("VGG", "VGG-11/13/16 (model.depth) for 32x32 images: a norm site after every 3x3 conv, "
                 "model.width_multiplier", VGGConfig, kind="maps", needs_images=True, widths=vgg_channels,
                 what=lambda m: f"model.depth={m.depth} model.width_multiplier={m.width_multiplier}",
                 build=_blocks(_vgg), check=_check_vgg),
    "resnet": Model("ResNet", "the CIFAR ResNet of He et al. 2016 (depth 6n+2, 16/32/64 channels, "
                    "model.shortcut A|B, model.preact, model.zero_init_residual)", ResNetConfig, kind="maps",
                    needs_images=True, widths=lambda m: [16, 32, 64], what=lambda m: "ResNet's 16, 32, 64 channels",
                    build=_resnet, check=_check_resnet, residual=True),
    "vit": Model("ViT", "a small Vision Transformer: model.patch, model.depth, model.dim, model.heads, "
                 "model.mlp_ratio; placement=pre is Pre-LN, post is Post-LN", ViTConfig, kind="tokens",
                 needs_images=True, widths=lambda m: [m.dim], what=lambda m: f"model.dim={m.dim}", build=_vit,
                 check=_check_vit, check_data=_check_vit_data),
}


def _kaiming(w) -> None:
    # torch: only when a model is built; this table is read at start-up (train --help)
    from torch import nn

    nn.init.kaiming_normal_(w, nonlinearity="relu")


def _xavier(w) -> None:
    # torch: only when a model is built; this table is read at start-up (train --help)
    from torch import nn

    nn.init.xavier_uniform_(w)


# init name -> what it does to each Linear/Conv weight (biases are zeroed); None keeps PyTorch's
INITS: dict[str, Callable | None] = {"default": None, "xavier": _xavier, "kaiming": _kaiming}
Init = Enum("Init", {name: name for name in INITS})


def build_model(cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model ``cfg.model`` with ``cfg.norm`` at ``cfg.placement``, initialised per
    ``cfg.init``; its norm sites are ``model.norm_sites``."""
    # torch: only when a model is built; this table is read at start-up (train --help)
    from torch import nn

    act_class = getattr(nn, ACTIVATIONS[option(cfg.model.activation)])
    # A per-channel mean subtraction right after the layer makes its bias redundant.
    bias = not (option(cfg.placement) == "pre" and NORMS[cfg.norm.name].cancels_bias)
    row = MODELS[cfg.model.name]
    model, sites = row.build(cfg, input_shape, num_classes, bias, act_class)
    model.norm_sites = sites
    initialise(model, option(cfg.init), bool(cfg.model.get("zero_init_residual", False)))
    norm = NORMS[cfg.norm.name]
    if norm.weights is not None:  # the norm changes the weights of the layers it normalizes (wn, WS)
        for site in sites:
            if site.layer is not None:
                norm.weights(site.layer, cfg.norm, row.kind)
    return model


def initialise(model: nn.Module, init: str, zero_init_residual: bool = False) -> None:
    """``default`` keeps PyTorch's; ``xavier`` is Glorot-uniform, ``kaiming`` He-normal
    (fan-in, ReLU gain), both with zero biases. Norm layers keep scale 1 and shift 0, but
    with ``zero_init_residual`` the scale of the sites whose role is ``residual`` (the last
    norm of a residual branch) starts at 0."""
    # torch: only when a model is built; this table is read at start-up (train --help)
    from torch import nn


    weights = INITS[init]
    for m in model.modules() if weights is not None else ():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            weights(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for site in norm_sites(model) if zero_init_residual else ():
        if site.role == "residual":
            nn.init.zeros_(scale_and_shift(site.norm)[0])


def parameterised_layers(model: nn.Module) -> list[tuple[str, list]]:
    """(layer name, its parameters) for every module that owns parameters, in order; the
    parameters of a parametrization (weight norm's g and v) count as their layer's."""
    layers: dict[str, list] = {}
    for name, p in model.named_parameters():
        owner = name.rpartition(".")[0]
        layers.setdefault(owner.split(".parametrizations.")[0], []).append(p)
    return list(layers.items())
