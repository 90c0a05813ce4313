"""A small Vision Transformer (Dosovitskiy et al. 2021) whose norms come from the norm table,
with Pre-LN and Post-LN as ``placement`` (Xiong et al. 2020).

    patches:  a patch x patch conv with stride patch: (N, C, H, W) -> (N, T, dim) tokens,
              T = (H / patch) * (W / patch), plus a learned position embedding
    blocks:   depth x (multi-head self-attention, MLP of mlp_ratio x dim with the activation)
    head:     the mean of the tokens -> Linear

    placement=pre  (Pre-LN):   x = x + drop(attn(attn_norm(x)));  x = x + drop(mlp(mlp_norm(x)))
                               ... final_norm(x) before the pooling
    placement=post (Post-LN, the original Transformer):
                               x = attn_norm(x + drop(attn(x)));  x = mlp_norm(x + drop(mlp(x)))

Pre-LN's final norm is part of the model (the residual stream is never normalized
otherwise): the one exception to "the output layer gets no normalization". Each norm is a
site (``block<i>.attn_norm``, ``block<i>.mlp_norm``, ``final_norm``); none follows a single
layer (they normalize the residual stream), so ``layer`` is None and weight normalization
is refused. The MLP's activation is the ``mlp_norm`` site's activation (probes measure its
dead or saturated units). The norms see tokens (N, T, C): LayerNorm and RMSNorm per token;
BatchNorm per channel over the batch's tokens (norms.py).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .checks import option
from .norms import make_norm
from .sites import NormSite


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # (N, h, T, c/h)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, c))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, act: Callable[[], nn.Module]):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), act(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, cfg, act: Callable[[], nn.Module]):
        super().__init__()
        m = cfg.model
        self.pre = option(cfg.placement) == "pre"
        self.attn_norm = make_norm(cfg.norm, m.dim, "tokens")
        self.attn = Attention(m.dim, m.heads)
        self.mlp_norm = make_norm(cfg.norm, m.dim, "tokens")
        self.mlp = MLP(m.dim, max(1, round(m.dim * m.mlp_ratio)), act)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = x + self.drop(self.attn(self.attn_norm(x)))
            return x + self.drop(self.mlp(self.mlp_norm(x)))
        x = self.attn_norm(x + self.drop(self.attn(x)))
        return self.mlp_norm(x + self.drop(self.mlp(x)))


class ViT(nn.Module):
    def __init__(self, cfg, input_shape: tuple[int, ...], num_classes: int, act: Callable[[], nn.Module]):
        super().__init__()
        m = cfg.model
        tokens = (input_shape[1] // m.patch) * (input_shape[2] // m.patch)
        self.patches = nn.Conv2d(input_shape[0], m.dim, m.patch, stride=m.patch)
        self.position = nn.Parameter(torch.zeros(1, tokens, m.dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.Sequential(*[Block(cfg, act) for _ in range(m.depth)])
        self.final_norm = make_norm(cfg.norm, m.dim, "tokens") if option(cfg.placement) == "pre" else None
        self.head = nn.Linear(m.dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patches(x).flatten(2).transpose(1, 2) + self.position  # (N, T, dim)
        x = self.blocks(x)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return self.head(x.mean(1))

    def sites(self, row: str) -> list[NormSite]:
        out = []
        for i, block in enumerate(self.blocks, start=1):
            out += [NormSite(f"block{i}.attn_norm", block.attn_norm, None, None, f"block{i}", row, "tokens"),
                    NormSite(f"block{i}.mlp_norm", block.mlp_norm, None, block.mlp.act, f"block{i}", row, "tokens")]
        if self.final_norm is not None:
            out.append(NormSite("final_norm", self.final_norm, None, None, "final", row, "tokens"))
        return out


def build_vit(cfg, input_shape: tuple[int, ...], num_classes: int, act) -> tuple:
    model = ViT(cfg, input_shape, num_classes, act)
    return model, model.sites(cfg.norm.name)
