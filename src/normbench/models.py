"""Models built from the ablation axes: an MLP and a small CNN.

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
"""

from __future__ import annotations

from collections import OrderedDict
from math import prod

from torch import nn

from .norms import NORMS, make_norm

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def _name(value) -> str:
    """Enum members from structured configs and plain strings alike."""
    return getattr(value, "value", value)


def hidden_block(layer_name: str, layer: nn.Module, norm: nn.Module, act: nn.Module,
                 placement: str, dropout: float, pool: bool) -> nn.Sequential:
    parts = [(layer_name, layer)]
    parts += [("norm", norm), ("act", act)] if placement == "pre" else [("act", act), ("norm", norm)]
    if dropout > 0:
        parts.append(("drop", nn.Dropout(dropout)))
    if pool:
        parts.append(("pool", nn.MaxPool2d(2)))
    return nn.Sequential(OrderedDict(parts))


def build_model(cfg, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model ``cfg.model`` with ``cfg.norm`` at ``cfg.placement``, initialised per ``cfg.init``."""
    placement = _name(cfg.placement)
    act = ACTIVATIONS[_name(cfg.model.activation)]
    # A per-channel mean subtraction right after the layer makes its bias redundant.
    bias = not (placement == "pre" and NORMS[cfg.norm.name].cancels_bias)
    blocks: list[tuple[str, nn.Module]] = []
    if cfg.model.name == "mlp":
        blocks.append(("flatten", nn.Flatten()))
        width_in = prod(input_shape)
        for i in range(cfg.model.depth):
            w = cfg.model.width
            blocks.append((f"block{i + 1}", hidden_block(
                "linear", nn.Linear(width_in, w, bias=bias), make_norm(cfg.norm, w, "vector"),
                act(), placement, cfg.dropout, pool=False)))
            width_in = w
    else:
        channels_in, side = input_shape[0], min(input_shape[1:])
        last = len(cfg.model.channels) - 1
        for i, c in enumerate(cfg.model.channels):
            pool = i < last and side >= 4
            blocks.append((f"block{i + 1}", hidden_block(
                "conv", nn.Conv2d(channels_in, c, 3, padding=1, bias=bias), make_norm(cfg.norm, c, "maps"),
                act(), placement, cfg.dropout, pool=pool)))
            channels_in, side = c, side // 2 if pool else side
        blocks += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
        width_in = channels_in
    blocks.append(("head", nn.Linear(width_in, num_classes)))
    model = nn.Sequential(OrderedDict(blocks))
    initialise(model, _name(cfg.init))
    return model


def initialise(model: nn.Module, init: str) -> None:
    """``default`` keeps PyTorch's; ``xavier`` is Glorot-uniform, ``kaiming`` He-normal
    (fan-in, ReLU gain), both with zero biases. Norm layers keep scale 1 and shift 0."""
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if init == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def parameterised_layers(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """(module name, its own parameters) for every module that owns parameters, in order."""
    return [
        (name, list(m.parameters(recurse=False)))
        for name, m in model.named_modules()
        if any(True for _ in m.parameters(recurse=False))
    ]
