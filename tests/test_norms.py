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
    assert set(NORMS) == {"bn", "brn", "ln", "rms", "in", "gn", "wn", "none"}


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


@pytest.mark.parametrize("name", [n for n, row in NORMS.items() if row.maps is not None])
def test_cancels_bias_says_whether_a_per_channel_bias_survives_the_norm(name):
    """The documented decision: no bias before a norm whose mean subtraction removes it
    (each input through a fresh layer: Batch Renorm's correction d is relative to running
    statistics, which absorb a constant bias as training goes on)."""
    from conftest import make_cfg

    torch.manual_seed(0)
    x = torch.randn(16, 16, 6, 6)
    bias = torch.randn(1, 16, 1, 1) * 3

    def fresh():
        return make_norm(make_cfg(f"norm={name}").norm, 16, "maps").train()  # as its YAML file sets it

    unchanged = torch.allclose(fresh()(x), fresh()(x + bias), atol=1e-4)
    assert unchanged == NORMS[name].cancels_bias


# --- beyond the four classics: RMSNorm, Batch Renorm, ghost batches, weight norm, weight standardization


def test_rms_norm_divides_by_the_root_mean_square_over_the_sample():
    torch.manual_seed(0)
    v = torch.randn(6, 8) * 3 + 1
    rms = make_norm(OmegaConf.create({"name": "rms", "eps": 1e-5, "affine": True}), 8, "vector")
    assert type(rms) is nn.RMSNorm
    assert torch.allclose(rms(v), v / (v.square().mean(1, keepdim=True) + 1e-5).sqrt(), atol=1e-6)
    x = torch.randn(4, 8, 5, 5) * 2 + 3
    maps = make_norm(OmegaConf.create({"name": "rms", "eps": 1e-5, "affine": True}), 8, "maps")
    with torch.no_grad():
        maps.weight.copy_(torch.arange(1.0, 9.0))
    expected = x / (x.square().mean((1, 2, 3), keepdim=True) + 1e-5).sqrt() * torch.arange(1.0, 9.0).view(1, 8, 1, 1)
    assert torch.allclose(maps(x), expected, atol=1e-5)  # over channels and space, a scale per channel


BRN = {"name": "brn", "momentum": 0.1, "eps": 1e-5, "affine": True, "precise_bn": False, "precise_bn_batches": 50,
       "ghost_batch": None, "r_max": 3.0, "d_max": 5.0, "warmup_steps": 10}


def _paper(x, running_mean, running_var, r_max, d_max, eps, weight, bias):
    """Batch Renormalization written out from the paper (Ioffe 2017, Algorithm 1)."""
    dims, shape = (0, 2, 3), (1, -1, 1, 1)
    mu, sigma = x.mean(dims), (x.var(dims, unbiased=False) + eps).sqrt()
    running_sigma = (running_var + eps).sqrt()
    r = torch.clamp(sigma / running_sigma, 1 / r_max, r_max).detach()  # stop_gradient
    d = torch.clamp((mu - running_mean) / running_sigma, -d_max, d_max).detach()
    x_hat = (x - mu.view(shape)) / sigma.view(shape) * r.view(shape) + d.view(shape)
    return weight.view(shape) * x_hat + bias.view(shape)


def test_batch_renorm_is_the_papers_formula_with_its_stop_gradient():
    torch.manual_seed(0)
    brn = make_norm(OmegaConf.create(BRN), 4, "maps")
    with torch.no_grad():
        brn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        brn.running_var.copy_(torch.tensor([0.2, 4.0, 1.0, 9.0]))
        brn.weight.copy_(torch.tensor([1.0, 2.0, 0.5, 1.5]))
        brn.bias.copy_(torch.tensor([0.1, 0.0, -0.2, 0.3]))
        brn.num_batches_tracked.fill_(5)  # half way through the warm-up: r_max 2, d_max 2.5
    assert brn.limits() == (2.0, 2.5)
    x = (torch.randn(8, 4, 3, 3) * 2 + 1).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    before = (brn.running_mean.clone(), brn.running_var.clone())
    y = brn.train()(x)
    expected = _paper(x2, *before, 2.0, 2.5, 1e-5, brn.weight.detach(), brn.bias.detach())
    assert torch.allclose(y, expected, atol=1e-5)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad((y * g).sum(), x)
    (ex,) = torch.autograd.grad((expected * g).sum(), x2)
    assert torch.allclose(gx, ex, atol=1e-5)  # r and d held constant in the backward pass
    # the running statistics move as BatchNorm's do
    assert torch.allclose(brn.running_mean, 0.9 * before[0] + 0.1 * x.detach().mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(brn.running_var, 0.9 * before[1] + 0.1 * x.detach().var((0, 2, 3), unbiased=True),
                          atol=1e-5)


def test_batch_renorm_is_batchnorm_before_its_warm_up_and_in_eval_mode():
    torch.manual_seed(1)
    brn, bn = make_norm(OmegaConf.create(BRN), 4, "maps"), nn.BatchNorm2d(4)
    x = torch.randn(8, 4, 3, 3) * 3 + 2
    assert brn.limits() == (1.0, 0.0)  # r = 1, d = 0: BatchNorm
    assert torch.allclose(brn.train()(x), bn.train()(x), atol=1e-5)
    assert torch.allclose(brn.running_mean, bn.running_mean) and torch.allclose(brn.running_var, bn.running_var)
    bn.load_state_dict(brn.state_dict())  # eval mode: BatchNorm's function of the same statistics, exactly
    assert torch.equal(brn.eval()(x), bn.eval()(x))


def test_ghost_batches_normalise_each_chunk_with_its_own_statistics():
    torch.manual_seed(2)
    cfg = OmegaConf.create({"name": "bn", "momentum": 0.1, "eps": 1e-5, "affine": False, "precise_bn": False,
                            "precise_bn_batches": 50, "ghost_batch": 4})
    ghost = make_norm(cfg, 3, "vector").train()
    x = torch.randn(12, 3) * torch.tensor([1.0, 5.0, 0.1]) + 7
    chunks = x.view(3, 4, 3)
    expected = (chunks - chunks.mean(1, keepdim=True)) / (chunks.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    assert torch.allclose(ghost(x), expected.view(12, 3), atol=1e-4)
    plain = nn.BatchNorm1d(3, affine=False).train()
    for c in chunks:  # each ghost batch updates the running statistics, as a batch would
        plain(c)
    assert torch.allclose(ghost.running_mean, plain.running_mean) and int(ghost.num_batches_tracked) == 3
    assert torch.equal(ghost.eval()(x), plain.eval()(x))  # eval mode unchanged


def test_weight_norm_reparametrises_each_hidden_layer_without_changing_its_function():
    from conftest import make_cfg
    from normbench.models import build_model

    torch.manual_seed(0)
    plain = build_model(make_cfg("norm=none"), (1, 8, 8), 10)
    torch.manual_seed(0)
    wn = build_model(make_cfg("norm=wn"), (1, 8, 8), 10)
    x = torch.randn(5, 1, 8, 8)
    assert torch.allclose(plain(x), wn(x), atol=1e-5)  # g = ||v||: the initialised network, reparametrised
    layer = wn.block1.linear
    g, v = layer.parametrizations.weight.original0, layer.parametrizations.weight.original1
    assert g.shape == (128, 1) and torch.allclose(g, v.norm(dim=1, keepdim=True))
    assert isinstance(wn.block1.norm, nn.Identity) and not hasattr(wn.head, "parametrizations")


def test_weight_standardization_gives_each_filter_zero_mean_and_unit_variance():
    from conftest import make_cfg
    from normbench.models import build_model

    model = build_model(make_cfg("model=cnn", "norm=gn", "norm.weight_standardization=true"), (1, 8, 8), 10)
    w = model.block2.conv.weight  # what the forward pass uses
    assert torch.allclose(w.mean((1, 2, 3)), torch.zeros(64), atol=1e-5)
    assert torch.allclose(w.var((1, 2, 3), unbiased=False), torch.ones(64), atol=1e-3)
    raw = model.block2.conv.parametrizations.weight.original
    assert not torch.allclose(raw.mean((1, 2, 3)), torch.zeros(64), atol=1e-5)
