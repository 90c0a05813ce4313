"""The CIFAR ResNet of He et al. (2016), section 4.2, with the norm injected at every conv
(as torchvision's ``norm_layer``) and each place it sits declared as a norm site.

    stem:    3x3 conv, 16 channels -> norm -> act
    stage1:  n basic blocks of 16 channels, 32x32
    stage2:  n basic blocks of 32 channels, the first with stride 2 (16x16)
    stage3:  n basic blocks of 64 channels, the first with stride 2 (8x8)
    global average pool -> Linear head            depth = 6n + 2 (20, 32, 44, 56, 110)

A basic block is two 3x3 convs and a shortcut. Where the shape changes, the shortcut is
``A``: the input subsampled (every other pixel) and zero-padded to the new channels (no
parameters), or ``B``: a 1x1 conv with stride 2 and its own norm (a norm site of its own).
``placement`` inside a block (``model.preact=false``, the original block):

    pre  (He et al.):  conv1 -> norm1 -> act1 [-> drop] -> conv2 -> norm2 -> + shortcut -> act2
    post:              conv1 -> act1 -> norm1 [-> drop] -> conv2 -> + shortcut -> act2 -> norm2

so ``post`` moves every norm after its activation, as in the MLP and the CNN; the second
norm then normalizes the block's output after the addition. With ``model.preact=true`` (the
pre-activation block, He et al. 2016b), the addition is the block's last operation:

    pre:   norm1 -> act1 -> conv1 [-> drop] -> norm2 -> act2 -> conv2 -> + shortcut
    post:  act1 -> norm1 -> conv1 [-> drop] -> act2 -> norm2 -> conv2 -> + shortcut

and a last norm and activation (the site ``final``) come before the pooling; a projection
shortcut takes the pre-activated input, as in the paper. A site's ``layer`` is
the conv whose output it normalizes (in a pre-activation block, the conv that feeds the
residual stream it normalizes), so weight normalization and weight standardization reach
every conv. ``model.zero_init_residual`` starts the norm that ends each residual branch (``norm2`` of
the original block with ``placement=pre``, role ``residual``) at scale 0, so every block
starts as its shortcut (Goyal et al. 2017). It is refused where no norm ends the branch:
with ``placement=post`` that norm follows the addition (zeroing it would zero the block's
output), and a pre-activation branch ends with a conv.

ResNet-20 with BatchNorm and shortcut A has 269,722 parameters for 10 classes (0.27M in
the paper), ResNet-32 464,154, ResNet-56 853,018: tests check it.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .checks import option
from .norms import make_norm
from .sites import NormSite

WIDTHS = (16, 32, 64)


class ShortcutA(nn.Module):
    """The identity, subsampled and zero-padded to ``out`` channels where the shape changes."""

    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.stride, self.pad = stride, channels_out - channels_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels: int, stride: int, cfg, bias: bool, act: Callable[[], nn.Module]):
        super().__init__()
        self.placement, self.preact = option(cfg.placement), bool(cfg.model.preact)
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride=stride, padding=1, bias=bias)
        self.norm1 = make_norm(cfg.norm, channels_in if self.preact else channels, "maps")
        self.act1 = act()
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm2 = make_norm(cfg.norm, channels, "maps")
        self.act2 = act()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels_in != channels:
            if cfg.model.shortcut == "A":
                self.shortcut = ShortcutA(channels_in, channels, stride)
            else:
                self.shortcut = nn.Sequential()
                self.shortcut.add_module("conv", nn.Conv2d(channels_in, channels, 1, stride=stride, bias=bias))
                self.shortcut.add_module("norm", make_norm(cfg.norm, channels, "maps"))

    def _norm_act(self, norm: nn.Module, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return act(norm(x)) if self.placement == "pre" else norm(act(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:
            h = self._norm_act(self.norm1, self.act1, x)
            skip = self.shortcut(h) if isinstance(self.shortcut, nn.Sequential) else self.shortcut(x)
            h = self.conv2(self._norm_act(self.norm2, self.act2, self.drop(self.conv1(h))))
            return h + skip
        h = self.drop(self._norm_act(self.norm1, self.act1, self.conv1(x)))
        h = self.conv2(h)
        if self.placement == "pre":
            return self.act2(self.norm2(h) + self.shortcut(x))
        return self.norm2(self.act2(h + self.shortcut(x)))

    def sites(self, name: str, row: str, feeding: Optional[nn.Module]) -> list[NormSite]:
        """This block's norm sites; ``feeding`` is the conv whose output reaches the block's
        input (a pre-activation block's first norm normalizes that stream)."""
        on_branch = not self.preact and self.placement == "pre"  # norm2 ends the residual branch
        out = [NormSite(f"{name}.norm1", self.norm1, feeding if self.preact else self.conv1, self.act1, name, row,
                        "maps"),
               NormSite(f"{name}.norm2", self.norm2, self.conv1 if self.preact else self.conv2, self.act2, name, row,
                        "maps", role="residual" if on_branch else "")]
        if isinstance(self.shortcut, nn.Sequential):
            out.append(NormSite(f"{name}.shortcut", self.shortcut.norm, self.shortcut.conv, None, name, row, "maps"))
        return out


class ResNet(nn.Module):
    def __init__(self, cfg, channels_in: int, num_classes: int, bias: bool, act: Callable[[], nn.Module]):
        super().__init__()
        n = (cfg.model.depth - 2) // 6
        preact = bool(cfg.model.preact)
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(channels_in, WIDTHS[0], 3, padding=1, bias=bias))
        if not preact:  # a pre-activation network's first block normalizes the stem's output
            pre = option(cfg.placement) == "pre"
            parts = [("norm", make_norm(cfg.norm, WIDTHS[0], "maps")), ("act", act())]
            for part, module in parts if pre else parts[::-1]:
                self.stem.add_module(part, module)
        c = WIDTHS[0]
        for s, width in enumerate(WIDTHS, start=1):
            stage = nn.Sequential()
            for b in range(1, n + 1):
                stage.add_module(f"block{b}", BasicBlock(c, width, 2 if s > 1 and b == 1 else 1, cfg, bias, act))
                c = width
            self.add_module(f"stage{s}", stage)
        self.final = nn.Sequential()  # a pre-activation network's last norm and activation
        if preact:
            parts = [("norm", make_norm(cfg.norm, c, "maps")), ("act", act())]
            for part, module in parts if option(cfg.placement) == "pre" else parts[::-1]:
                self.final.add_module(part, module)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.head(F.adaptive_avg_pool2d(self.final(x), 1).flatten(1))

    def sites(self, row: str) -> list[NormSite]:
        out = []
        feeding = self.stem.conv
        if hasattr(self.stem, "norm"):
            out.append(NormSite("stem", self.stem.norm, self.stem.conv, self.stem.act, "stem", row, "maps"))
        for s in range(1, len(WIDTHS) + 1):
            for b, block in getattr(self, f"stage{s}").named_children():
                out += block.sites(f"stage{s}.{b}", row, feeding)
                feeding = block.conv2
        if hasattr(self.final, "norm"):
            out.append(NormSite("final", self.final.norm, feeding, self.final.act, "final", row, "maps"))
        return out


def build_resnet(cfg, input_shape: tuple[int, ...], num_classes: int, bias: bool, act) -> tuple:
    model = ResNet(cfg, input_shape[0], num_classes, bias, act)
    return model, model.sites(cfg.norm.name)
