"""The norm table: each name builds the layer users expect, normalising over the axes
DESIGN.md names, with norm.* options reaching the layer."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from normbench.norms import NORMS, make_norm

CFG = {
    "bn": dict(name="bn", momentum=0.3, eps=1e-3, affine=True),
    "ln": dict(name="ln", eps=1e-3, affine=True),
    "in": dict(name="in", eps=1e-3, affine=True),
    "gn": dict(name="gn", groups=4, eps=1e-3, affine=True),
    "none": dict(name="none"),
}


def cfg(name, **kw):
    return OmegaConf.create({**CFG[name], **kw})


def test_the_table_has_exactly_the_names_users_type():
    assert set(NORMS) == {"bn", "ln", "in", "gn", "none"}


@pytest.mark.parametrize("name,kind,cls", [
    ("bn", "vector", nn.BatchNorm1d), ("bn", "maps", nn.BatchNorm2d),
    ("ln", "vector", nn.LayerNorm), ("ln", "maps", nn.GroupNorm),
    ("in", "maps", nn.InstanceNorm2d),
    ("gn", "vector", nn.GroupNorm), ("gn", "maps", nn.GroupNorm),
    ("none", "vector", nn.Identity), ("none", "maps", nn.Identity),
])
def test_each_name_builds_its_layer(name, kind, cls):
    layer = make_norm(cfg(name), 8, kind)
    assert type(layer) is cls
    x = torch.randn(6, 8) if kind == "vector" else torch.randn(6, 8, 5, 5)
    assert layer(x).shape == x.shape


def test_instance_norm_has_no_vector_form():
    assert NORMS["in"].build("vector") is None
    with pytest.raises(ValueError):
        make_norm(cfg("in"), 8, "vector")


def _stats_axes_are_normalised(y, dims):
    m, s = y.mean(dim=dims), y.var(dim=dims, unbiased=False)
    assert torch.allclose(m, torch.zeros_like(m), atol=1e-4)
    assert torch.allclose(s, torch.ones_like(s), atol=1e-2)


def test_each_norm_normalises_over_its_axes():
    torch.manual_seed(0)
    x = torch.randn(16, 8, 6, 6) * 3 + torch.arange(8.0).view(1, 8, 1, 1)
    _stats_axes_are_normalised(make_norm(cfg("bn"), 8, "maps").train()(x), (0, 2, 3))  # per channel
    _stats_axes_are_normalised(make_norm(cfg("ln"), 8, "maps")(x), (1, 2, 3))  # per sample
    _stats_axes_are_normalised(make_norm(cfg("in"), 8, "maps")(x), (2, 3))  # per sample and channel
    g = make_norm(cfg("gn"), 8, "maps")(x).view(16, 4, 2, 6, 6)
    _stats_axes_are_normalised(g, (2, 3, 4))  # per sample and group of 2 channels
    v = torch.randn(16, 8) * 5 + 2
    _stats_axes_are_normalised(make_norm(cfg("bn"), 8, "vector").train()(v), (0,))
    _stats_axes_are_normalised(make_norm(cfg("ln"), 8, "vector")(v), (1,))
    assert torch.equal(make_norm(cfg("none"), 8, "vector")(v), v)


def test_ln_on_maps_matches_layernorm_over_channels_and_space():
    x = torch.randn(4, 8, 5, 5)
    ours = make_norm(cfg("ln", affine=False), 8, "maps")(x)
    reference = nn.functional.layer_norm(x, (8, 5, 5), eps=1e-3)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_norm_options_reach_the_layer():
    bn = make_norm(cfg("bn", affine=False), 8, "vector")
    assert (bn.momentum, bn.eps, bn.affine) == (0.3, 1e-3, False)
    assert make_norm(cfg("bn", momentum=None), 8, "vector").momentum is None
    gn = make_norm(cfg("gn", groups=2), 8, "maps")
    assert (gn.num_groups, gn.eps, gn.affine) == (2, 1e-3, True)
    ln = make_norm(cfg("ln", affine=False), 8, "vector")
    assert ln.weight is None and ln.eps == 1e-3
    inorm = make_norm(cfg("in"), 8, "maps")
    assert inorm.affine and inorm.eps == 1e-3


@pytest.mark.parametrize("name", ["bn", "ln", "in", "gn"])
def test_cancels_bias_says_whether_a_per_channel_bias_survives_the_norm(name):
    """The documented decision: no bias before a norm whose mean subtraction removes it."""
    torch.manual_seed(0)
    x = torch.randn(16, 8, 6, 6)
    bias = torch.randn(1, 8, 1, 1) * 3
    layer = make_norm(cfg(name), 8, "maps").train()
    unchanged = torch.allclose(layer(x), layer(x + bias), atol=1e-4)
    assert unchanged == NORMS[name].cancels_bias
