"""The performance options (amp, channels_last, compile), the synthetic image data they
are timed on, and their refused values. CPU only; the GPU path is exercised by
scripts/bench.py --device cuda."""

import math
import os
import shutil

import pytest
import torch

from conftest import make_cfg, run_dirs, run_in_process
from normbench.data import load_data
from normbench.models import build_model
from normbench.trainer import Trainer


def train(*overrides):
    cfg = make_cfg("progress=false", "checkpoint=false", *overrides)
    data = load_data(cfg.data)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_shape, data.num_classes)
    logged: dict = {}
    outcome = Trainer(model, data, cfg).run(lambda step, epoch, metrics: logged.update(
        {(step, tag): v for tag, v in metrics.items() if isinstance(v, float)}))
    return outcome, logged, model


def test_bf16_autocast_trains_on_cpu_and_records_its_metrics():
    out, logged, _ = train("model=cnn", "epochs=1", "amp=bf16")
    ref, ref_logged, _ = train("model=cnn", "epochs=1")
    assert out.status == "completed" and out.steps == ref.steps == 22
    assert set(logged) == set(ref_logged)  # the same tags at the same steps
    assert all(math.isfinite(v) for v in logged.values())
    # bfloat16 has 8 bits of mantissa: close to float32, not equal
    assert logged[(22, "train/loss")] != ref_logged[(22, "train/loss")]
    assert abs(logged[(22, "train/loss")] - ref_logged[(22, "train/loss")]) < 0.05
    assert abs(out.final["val/acc"] - ref.final["val/acc"]) < 0.05


def test_channels_last_gives_the_numbers_of_the_default_layout():
    out, logged, model = train("model=cnn", "epochs=1", "channels_last=true")
    ref, ref_logged, _ = train("model=cnn", "epochs=1")
    assert model.block1.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert set(logged) == set(ref_logged)
    for key, v in ref_logged.items():
        if not key[1].startswith("perf/"):
            assert logged[key] == pytest.approx(v, rel=1e-4, abs=1e-5), key


@pytest.mark.parametrize("model,options", [
    (["model=resnet", "model.depth=8"], ["amp=bf16", "channels_last=true"]),
    (["model=vgg", "model.width_multiplier=0.125"], ["amp=bf16", "channels_last=true"]),
    (["model=vit", "model.depth=1", "model.dim=16"], ["amp=bf16"]),
], ids=["resnet", "vgg", "vit"])
def test_the_new_models_take_the_gpu_paths_options(model, options):
    small = ["data=synthetic", "data.shape=[3,8,8]", "data.n_samples=200", "epochs=null", "steps=6", "batch_size=16",
             "probe_every=3"]
    out, logged, net = train(*model, *small, *options)
    ref, ref_logged, _ = train(*model, *small)
    assert out.status == "completed" and out.steps == 6 and set(logged) == set(ref_logged)
    assert all(math.isfinite(v) for v in logged.values())
    if "channels_last=true" in options:
        assert net.norm_sites[0].layer.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None and shutil.which("gcc") is None,
                    reason="torch.compile on CPU needs a C++ compiler")
@pytest.mark.slow  # torch.compile on the CPU: its first steps take seconds
def test_compile_trains_a_tiny_mlp_and_probes_still_see_every_block():
    out, logged, _ = train("epochs=1", "compile=true", "model.depth=1", "model.width=16", "probe_every=10")
    ref, ref_logged, _ = train("epochs=1", "model.depth=1", "model.width=16", "probe_every=10")
    assert out.status == "completed" and out.steps == 22
    # probes run the uncompiled module (same weights): their hooks fire at every probe step
    probe_tags = {k for k in ref_logged if k[1].startswith("act/block1/")}
    assert probe_tags and probe_tags <= set(logged)
    assert {s for s, t in probe_tags} == {0, 10, 20, 22}  # every 10 steps, and the last
    assert out.final["val/acc"] == pytest.approx(ref.final["val/acc"], abs=0.05)


def test_synthetic_images_are_cifar_shaped_by_default_fixed_and_learnable():
    d = load_data(make_cfg("data=synthetic").data)
    assert d.input_shape == (3, 32, 32) and d.num_classes == 10
    assert (len(d.train), len(d.val)) == (8000, 2000)
    again = load_data(make_cfg("data=synthetic").data)
    assert torch.equal(d.train.x, again.train.x) and torch.equal(d.val.y, again.val.y)
    out, _, _ = train("model=cnn", "data=synthetic", "data.shape=[3,8,8]", "data.n_samples=400", "epochs=3",
                      "batch_size=32", "data.noise=0.5")
    assert out.status == "completed" and out.final["val/acc"] > 0.5  # chance is 0.1


@pytest.mark.parametrize("args,expected", [
    (["amp=fp16"], "normbench: error: amp=fp16 is not allowed; allowed: none, bf16 (fp16 would need loss scaling"),
    (["channels_last=true"], "normbench: error: channels_last=true is not allowed with model=mlp: it is a "
                             "memory layout for feature maps, and an MLP's features have no spatial extent; allowed: "
                             "model=cnn, vgg, resnet, or channels_last=false"),
    (["compile=maybe"], "normbench: error: Error merging override compile=maybe"),
    (["data=synthetic", "data.shape=[3,32]"], "normbench: error: data.shape=[3,32] is not allowed; allowed: [C,H,W]"),
    (["data=synthetic", "data.noise=-1"], "normbench: error: data.noise=-1.0 is not allowed; allowed: a finite number"),
    (["model=cnn", "data=synthetic", "data.shape=[20]"], "normbench: error: model=cnn needs image data, but "
                                                           "data=synthetic has shape (20,)"),
])
def test_bad_performance_options_are_refused_in_one_line(workdir, args, expected):
    proc = run_in_process("train", "progress=false", *args, cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(expected), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert run_dirs(workdir) == []
