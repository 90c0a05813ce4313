"""Models built from the axes: block order, where norms sit, shapes, init, BN modes."""

import pytest
import torch
from torch import nn

from conftest import make_cfg
from normbench.models import build_model, parameterised_layers
from normbench.norms import NORMS


def names(block):
    return [n for n, _ in block.named_children()]


def test_mlp_has_depth_blocks_of_width_and_no_norm_at_input_or_output():
    m = build_model(make_cfg("model.depth=4", "model.width=32"), (1, 8, 8), 10)
    assert names(m) == ["flatten", "block1", "block2", "block3", "block4", "head"]
    assert all(m[i].linear.out_features == 32 for i in range(1, 5))
    assert isinstance(m.head, nn.Linear) and m.head.out_features == 10
    norms = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm1d)]
    assert len(norms) == 4
    assert m(torch.randn(5, 1, 8, 8)).shape == (5, 10)


@pytest.mark.parametrize("placement,order", [("pre", ["linear", "norm", "act"]), ("post", ["linear", "act", "norm"])])
def test_placement_orders_the_block(placement, order):
    m = build_model(make_cfg(f"placement={placement}"), (1, 8, 8), 10)
    assert names(m.block1) == order


def test_dropout_follows_each_block_only_when_asked():
    m = build_model(make_cfg("dropout=0.3"), (1, 8, 8), 10)
    assert names(m.block2) == ["linear", "norm", "act", "drop"] and m.block2.drop.p == 0.3
    assert not any(isinstance(x, nn.Dropout) for x in build_model(make_cfg(), (1, 8, 8), 10).modules())


def test_none_keeps_an_identity_where_the_norm_would_be():
    m = build_model(make_cfg("norm=none"), (1, 8, 8), 10)
    assert isinstance(m.block1.norm, nn.Identity)


@pytest.mark.parametrize("overrides,bias", [
    (["norm=bn"], False), (["norm=bn", "placement=post"], True), (["norm=ln"], True),
    (["norm=gn"], True), (["norm=none"], True),
    (["model=cnn", "norm=in"], False), (["model=cnn", "norm=bn"], False), (["model=cnn", "norm=gn"], True),
])
def test_bias_is_dropped_only_right_before_a_norm_that_removes_it(overrides, bias):
    m = build_model(make_cfg(*overrides), (1, 8, 8), 10)
    layer = m.block1[0]
    assert (layer.bias is not None) == bias


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("norm", [n for n, row in NORMS.items() if row.maps is not None])
def test_cnn_works_on_digits_mnist_and_cifar_shapes(shape, norm):
    m = build_model(make_cfg("model=cnn", f"norm={norm}", "model.channels=[16,32,32]"), shape, 10)
    assert m(torch.randn(4, *shape)).shape == (4, 10)
    assert names(m)[-3:] == ["gap", "flatten", "head"]
    convs = [getattr(m, f"block{i}").conv for i in (1, 2, 3)]
    assert all(isinstance(c, nn.Conv2d) and c.kernel_size == (3, 3) for c in convs)


def test_cnn_pools_between_blocks_but_not_after_the_last():
    m = build_model(make_cfg("model=cnn", "model.channels=[8,16,32]"), (3, 32, 32), 10)
    assert "pool" in names(m.block1) and "pool" in names(m.block2) and "pool" not in names(m.block3)


@pytest.mark.parametrize("init", ["xavier", "kaiming"])
def test_init_sets_weights_and_zeroes_biases(init):
    torch.manual_seed(0)
    m = build_model(make_cfg(f"init={init}", "norm=none", "model.width=256"), (1, 8, 8), 10)
    w = m.block2.linear.weight
    expected_std = (2 / (256 + 256)) ** 0.5 if init == "xavier" else (2 / 256) ** 0.5
    assert abs(w.std().item() - expected_std) / expected_std < 0.05
    assert torch.count_nonzero(m.block2.linear.bias) == 0


def test_same_seed_same_weights():
    torch.manual_seed(3)
    a = build_model(make_cfg(), (1, 8, 8), 10)
    torch.manual_seed(3)
    b = build_model(make_cfg(), (1, 8, 8), 10)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_bn_running_statistics_change_in_train_mode_and_not_in_eval_mode():
    m = build_model(make_cfg(), (1, 8, 8), 10)
    bn = m.block1.norm
    before = bn.running_mean.clone()
    m.eval()
    m(torch.randn(32, 1, 8, 8) + 2)
    assert torch.equal(bn.running_mean, before)
    m.train()
    m(torch.randn(32, 1, 8, 8) + 2)
    assert not torch.equal(bn.running_mean, before)


def test_parameterised_layers_name_every_layer_with_parameters_once():
    m = build_model(make_cfg("model.depth=2"), (1, 8, 8), 10)
    layers = parameterised_layers(m)
    assert [n for n, _ in layers] == ["block1.linear", "block1.norm", "block2.linear", "block2.norm", "head"]
    assert sum(len(ps) for _, ps in layers) == len(list(m.parameters()))
