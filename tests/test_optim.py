"""Optimizers and weight decay per parameter group: the norm layers' own parameters, the
other biases and the weights, for every norm row and model of the tables."""

import re

import pytest
import torch

from conftest import make_cfg
from normbench.models import MODELS, build_model
from normbench.norms import NORMS
from normbench.optim import OPTIMIZERS, build_optimizer, named_groups, param_groups

PAIRS = [(norm, model) for norm, row in NORMS.items() for model, m in MODELS.items()
         if row.build(m.kind) is not None]
SHAPES = {"vector": (1, 8, 8), "maps": (3, 8, 8), "tokens": (3, 8, 8)}
NORM_MODULE = re.compile(r"norm\d?|\w+_norm")  # norm, norm1, attn_norm, final_norm: where the models put norms


def model_for(*overrides):
    cfg = make_cfg(*overrides)
    return cfg, build_model(cfg, SHAPES[MODELS[cfg.model.name].kind], 10)


def expected_groups(model) -> dict:
    """What the README says each group holds, found by position in the model, not by the
    code under test: every parameter of a block's norm layer and weight norm's magnitudes g
    are the norm's; the other biases; everything else."""
    names = [n for n, _ in model.named_parameters()]
    norm = [n for n in names if any(NORM_MODULE.fullmatch(part) for part in n.split(".")[:-1])
            or n.endswith("parametrizations.weight.original0")]
    bias = [n for n in names if n not in norm and n.endswith(".bias")]
    return {"weights": [n for n in names if n not in norm and n not in bias], "norm": norm, "bias": bias}


@pytest.mark.parametrize("norm,model", PAIRS, ids=[f"{n}-{m}" for n, m in PAIRS])
def test_each_parameter_is_in_the_group_its_layer_says(norm, model):
    _, net = model_for(f"norm={norm}", f"model={model}")
    groups = named_groups(net)
    assert groups == expected_groups(net)
    assert sorted(sum(groups.values(), [])) == sorted(n for n, _ in net.named_parameters())
    if NORMS[norm].cancels_bias or norm in ("ln", "gn"):  # beta is the norm's, not a bias
        assert any(n.endswith("norm.bias") or n.endswith("norm1.bias") for n in groups["norm"]) \
            or not make_cfg(f"norm={norm}").norm.affine
    if norm == "wn":
        assert groups["norm"] and all(n.endswith("original0") for n in groups["norm"])
    if norm == "none":
        assert groups["norm"] == []


def test_the_variants_keep_their_parameters_where_their_row_puts_them():
    _, net = model_for("norm=gn_ws", "model=cnn")  # weight standardization: the conv weight stays a weight
    groups = named_groups(net)
    assert any(n.endswith("parametrizations.weight.original") for n in groups["weights"])
    assert groups == expected_groups(net)


def test_each_group_gets_its_decay_and_null_means_weight_decay():
    cfg, net = model_for("optim.weight_decay=5e-4", "optim.norm_weight_decay=0", "optim.bias_weight_decay=1e-5")
    opt = build_optimizer(cfg, net, 0.1)
    named = named_groups(net)
    by_decay = {g["weight_decay"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    params = dict(net.named_parameters())
    assert by_decay == {5e-4: {id(params[n]) for n in named["weights"]}, 0.0: {id(params[n]) for n in named["norm"]},
                        1e-5: {id(params[n]) for n in named["bias"]}}
    cfg, net = model_for("optim.weight_decay=5e-4", "optim.bias_weight_decay=5e-4")  # norm: null = weight_decay
    assert [g["weight_decay"] for g in param_groups(net, cfg.optim)] == [5e-4]


def test_one_decay_is_one_group_in_the_models_order():
    """So an optimizer (and a checkpoint's optimizer state) is as it was before groups existed."""
    cfg, net = model_for("optim.weight_decay=1e-4")
    (group,) = param_groups(net, cfg.optim)
    assert [id(p) for p in group["params"]] == [id(p) for p in net.parameters()]


def test_adamw_decays_the_weights_apart_from_the_gradient():
    cfg, net = model_for("optim=adamw", "optim.weight_decay=0.1", "optim.norm_weight_decay=0")
    opt = build_optimizer(cfg, net, 0.01)
    assert isinstance(opt, torch.optim.AdamW) and OPTIMIZERS["adamw"].label == "AdamW"
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only the decoupled decay moves a weight
    opt.step()
    w, gamma = "block1.linear.weight", "block1.norm.weight"
    assert torch.allclose(dict(net.named_parameters())[w], before[w] * (1 - 0.01 * 0.1))
    assert torch.equal(dict(net.named_parameters())[gamma], before[gamma])
