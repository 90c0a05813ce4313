"""ResNet, VGG and the ViT: shapes on the digits' 8x8 and CIFAR's 32x32, parameter counts
against the papers, the norm sites each declares and the probes find, zero-initialised
residual branches, Pre-LN and Post-LN wiring, and what each refuses."""

import pytest
import torch
from torch import nn

from conftest import make_cfg
from normbench.errors import UsageError
from normbench.models import MODELS, VGG_LAYERS, build_model
from normbench.norms import NORMS
from normbench.probes import Probes
from normbench.validate import check_against_data, check_config

SMALL = {"vgg": ["model.width_multiplier=0.125"], "vit": ["model.depth=2", "model.dim=32"], "resnet": ["model.depth=8"],
         "cnn": ["model.channels=[8,16]"], "mlp": []}
ACCEPTED = [(m, n) for m, row in MODELS.items() for n, norm in NORMS.items() if norm.build(row.kind) is not None]


def model(*overrides, shape=(3, 32, 32), classes=10):
    cfg = make_cfg(*overrides)
    check_config(cfg)
    torch.manual_seed(0)
    return build_model(cfg, shape, classes)


@pytest.mark.parametrize("name,norm", [(m, n) for m, n in ACCEPTED if m in ("vgg", "resnet", "vit")])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)], ids=["8x8", "32x32"])
def test_every_accepted_norm_builds_and_runs_on_both_image_sizes(name, norm, shape):
    m = model(f"model={name}", f"norm={norm}", *SMALL[name], shape=shape)
    m.train()
    assert m(torch.randn(4, *shape)).shape == (4, 10)
    m.eval()
    assert torch.isfinite(m(torch.randn(4, *shape))).all()


@pytest.mark.parametrize("depth,params", [(20, 269_722), (32, 464_154), (56, 853_018)])
def test_resnet_has_the_papers_parameter_count(depth, params):
    """He et al. 2016, table 6: 0.27M, 0.46M, 0.85M (BatchNorm, shortcut A, 10 classes)."""
    m = model("model=resnet", f"model.depth={depth}")
    assert sum(p.numel() for p in m.parameters()) == params


def test_resnet_20_has_19_conv_norm_sites_and_two_more_with_projections():
    a, b = model("model=resnet"), model("model=resnet", "model.shortcut=B")
    assert len(a.norm_sites) == 19 and all(isinstance(s.layer, nn.Conv2d) for s in a.norm_sites)
    assert [s.name for s in b.norm_sites if s.name.endswith("shortcut")] == ["stage2.block1.shortcut",
                                                                             "stage3.block1.shortcut"]
    assert len(b.norm_sites) == 21
    assert {id(s.layer) for s in a.norm_sites} == {id(c) for c in a.modules() if isinstance(c, nn.Conv2d)}


def test_shortcut_a_subsamples_and_zero_pads_the_identity():
    block = model("model=resnet").stage2.block1
    x = torch.randn(2, 16, 8, 8)
    y = block.shortcut(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2]) and not y[:, :8].any() and not y[:, 24:].any()


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_zero_init_residual_starts_every_block_as_its_shortcut(shortcut):
    m = model("model=resnet", "model.zero_init_residual=true", f"model.shortcut={shortcut}")
    residual = [s for s in m.norm_sites if s.role == "residual"]
    assert [s.name for s in residual] == [f"stage{i}.block{j}.norm2" for i in (1, 2, 3) for j in (1, 2, 3)]
    assert all(torch.count_nonzero(s.norm.weight) == 0 for s in residual)
    assert all(torch.count_nonzero(s.norm.weight) == s.norm.weight.numel() for s in m.norm_sites if not s.role)
    m.eval()
    for stage in (m.stage1, m.stage2, m.stage3):
        for block in stage:
            x = torch.randn(2, block.conv1.in_channels, 8, 8)
            assert torch.allclose(block(x), torch.relu(block.shortcut(x)))


@pytest.mark.parametrize("overrides,message", [
    (["norm=none"], "model.zero_init_residual=true is not allowed with norm=none: it starts each residual branch's "
                    "last norm scale (gamma) at 0, and this norm has none"),
    (["norm.affine=false"], "norm=bn norm.affine=false"),
    (["placement=post"], "is not allowed with placement=post: the block's last norm then follows the addition"),
    (["model.preact=true"], "is not allowed with model.preact=true: a pre-activation residual branch ends with a conv"),
])
def test_zero_init_residual_is_refused_where_there_is_no_scale_on_a_branch(overrides, message):
    with pytest.raises(UsageError, match="allowed:") as e:
        check_config(make_cfg("model=resnet", "model.zero_init_residual=true", *overrides))
    assert message in str(e.value)


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_resnet_placement_orders_each_block_as_the_readme_says(placement):
    m = model("model=resnet", f"placement={placement}")
    block, order = m.stage1.block1, []
    for name in ("conv1", "norm1", "act1", "conv2", "norm2", "act2"):
        getattr(block, name).register_forward_hook(lambda *_, n=name: order.append(n))
    block(torch.randn(2, 16, 8, 8))
    assert order == (["conv1", "norm1", "act1", "conv2", "norm2", "act2"] if placement == "pre"
                     else ["conv1", "act1", "norm1", "conv2", "act2", "norm2"])


@pytest.mark.parametrize("depth", list(VGG_LAYERS))
def test_vgg_has_a_norm_site_after_every_conv_and_five_pools_on_32x32(depth):
    m = model("model=vgg", f"model.depth={depth}", "model.width_multiplier=0.25")
    convs = [c for c in VGG_LAYERS[depth] if c != "M"]
    assert len(m.norm_sites) == len(convs) == {11: 8, 13: 10, 16: 13}[depth]
    assert [s.layer.out_channels for s in m.norm_sites] == [c // 4 for c in convs]
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.modules()) == 5
    # on the 8x8 digits the pooling stops while the next conv would see less than 2x2, and pools last
    small = model("model=vgg", f"model.depth={depth}", "model.width_multiplier=0.25", shape=(1, 8, 8))
    seen = []
    for s in small.norm_sites:
        s.layer.register_forward_hook(lambda _m, i, o: seen.append(o.shape[-1]))
    small(torch.randn(2, 1, 8, 8))
    assert min(seen) == 2 and seen[0] == 8


def test_vgg_11_with_batchnorm_has_the_cifar_parameter_count():
    """VGG-11 for CIFAR-10 (one Linear head), with BatchNorm and no conv biases: 9,228,362."""
    assert sum(p.numel() for p in model("model=vgg").parameters()) == 9_228_362


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_the_vit_is_pre_ln_or_post_ln(placement):
    m = model("model=vit", "norm=ln", f"placement={placement}", "model.depth=2", "model.dim=32",
              shape=(1, 8, 8))
    block = m.blocks[0]
    seen = {}
    block.register_forward_pre_hook(lambda _m, i: seen.__setitem__("input", i[0]))
    block.attn_norm.register_forward_pre_hook(lambda _m, i: seen.__setitem__("attn_norm", i[0]))
    block.attn.register_forward_hook(lambda _m, i, o: seen.__setitem__("attn", (i[0], o)))
    m(torch.randn(2, 1, 8, 8))
    if placement == "pre":  # the norm sees the stream, attention the normalized stream
        assert torch.equal(seen["attn_norm"], seen["input"]) and torch.equal(seen["attn"][0], block.attn_norm(
            seen["input"]))
        assert isinstance(m.final_norm, nn.LayerNorm) and m.norm_sites[-1].name == "final_norm"
    else:  # attention sees the stream, the norm the sum
        assert torch.equal(seen["attn"][0], seen["input"])
        assert torch.allclose(seen["attn_norm"], seen["input"] + seen["attn"][1])
        assert m.final_norm is None and len(m.norm_sites) == 4


def test_the_vit_runs_on_the_digits_with_patch_2_and_refuses_a_patch_that_does_not_divide():
    m = model("model=vit", "model.patch=2", "model.depth=1", shape=(1, 8, 8))
    assert m.position.shape == (1, 16, 64) and m(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(UsageError, match=r"model.patch=3 is not allowed; allowed: a divisor of the images' sides \(8x8"):
        check_against_data(make_cfg("model=vit", "model.patch=3"), 1437, (1, 8, 8))


@pytest.mark.parametrize("norm,why", [
    ("in", "InstanceNorm works on feature maps (each channel over space), and a Transformer's norms see tokens"),
    ("wn", "weight normalization works on the weight of the layer each norm follows"),
])
def test_the_vit_refuses_the_norms_it_has_no_form_for(norm, why):
    with pytest.raises(UsageError) as e:
        check_config(make_cfg("model=vit", f"norm={norm}"))
    assert why in str(e.value) and "allowed: model=" in str(e.value) and "norm=bn, brn, ln, rms, gn, none" in str(e.value)


@pytest.mark.parametrize("name,norm", [(m, n) for m, n in ACCEPTED if n in ("bn", "ln", "none")])
def test_the_probes_measure_every_site_the_model_declares(name, norm):
    m = model(f"model={name}", f"norm={norm}", *SMALL[name], shape=(3, 8, 8))
    measured = Probes(m, torch.randn(16, 3, 8, 8)).measure()
    for site in m.norm_sites:
        for where in ("pre_norm", "post_norm"):
            assert f"act/{site.name}/{where}/std" in measured and f"act/{site.name}/{where}" in measured
        if site.act is not None and isinstance(site.act, nn.ReLU):
            assert f"act/{site.name}/dead" in measured
    tagged = {tag.split("/")[1] for tag in measured if tag.startswith("act/")}
    assert tagged == {s.name for s in m.norm_sites}
    if norm == "bn":  # every BatchNorm site's running statistics compared with the batch's
        assert {t.split("/")[1] for t in measured if t.startswith("bn/")} == {s.name for s in m.norm_sites}
