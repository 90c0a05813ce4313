"""End to end through the ``normbench`` command's entry function (``normbench.cli.main``,
in this process: ``run_in_process``), in a fresh working directory each time (so the
configs are found from anywhere); ``python -m normbench`` in a real process."""

import json
import sys

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import HISTOGRAMS, SCALARS, EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from conftest import FAST, HERE, run_dirs, run_in_process
from datasets_on_disk import write_mnist
from normbench.data import load_data
from normbench.models import build_model
from normbench.batchnorm import evaluate

@pytest.fixture(scope="session")  # see conftest: built once, in one worker
def default_run(tmp_path_factory):
    """``normbench train`` with nothing changed: the README's first command."""
    cwd = tmp_path_factory.mktemp("default")
    proc = run_in_process("train", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(cwd)
    return proc, run_dir


@pytest.mark.slow  # trains
@pytest.mark.xdist_group("test_cli:default_run")
def test_default_run_learns_and_says_where_its_directory_is(default_run):
    proc, run_dir = default_run
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "completed" and s["error"] is None
    assert s["final_val_acc"] > 0.93 and s["best_val_acc"] >= s["final_val_acc"]
    assert s["steps"] == 20 * (1437 // 64) and s["epochs_completed"] == 20
    assert s["steps_to_target"] is not None and s["seconds_to_target"] > 0
    assert s["steps_per_s"] > 0 and s["samples_per_s"] == pytest.approx(64 * s["steps_per_s"])
    assert s["device"] == "cpu" and s["versions"]["torch"] == torch.__version__
    assert s["config"]["model"] == {"name": "mlp", "depth": 3, "width": 128, "activation": "relu"}
    assert s["config"]["norm"]["name"] == "bn" and s["config"]["data"]["name"] == "digits"
    rel = run_dir.relative_to(run_dir.parents[3])  # outputs/runs/<date>/<time>
    assert str(rel).startswith("outputs/runs/")
    assert proc.stdout.strip().splitlines()[-2:] == [f"run directory: {rel}", f"tensorboard --logdir {rel}"]
    assert "epoch 20/20" in proc.stderr  # line-based progress when not on a terminal
    assert (run_dir / ".hydra" / "config.yaml").exists() and (run_dir / "train.log").exists()


@pytest.mark.slow  # trains
@pytest.mark.xdist_group("test_cli:default_run")
def test_metrics_csv_holds_every_logged_value_and_agrees_with_the_summary(default_run):
    _, run_dir = default_run
    s = json.loads((run_dir / "summary.json").read_text())
    m = pd.read_csv(run_dir / "metrics.csv")
    assert list(m.columns) == ["step", "epoch", "tag", "value", "wall_time"]
    tags = set(m.tag)
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "grad_norm/total", "grad_norm/head",
            "perf/steps_per_s"} <= tags
    assert {f"grad_norm/block{i}.{p}" for i in (1, 2, 3) for p in ("linear", "norm")} <= tags
    val = m[m.tag == "val/acc"].sort_values("step")
    assert list(val.step) == [22 * e for e in range(1, 21)] and list(val.epoch) == list(range(1, 21))
    assert val.value.iloc[-1] == s["final_val_acc"] and val.value.max() == s["best_val_acc"]
    assert m[m.tag == "val/loss"].value.iloc[-1] == s["final_val_loss"]
    wide = m.pivot_table(index="step", columns="tag", values="value")
    assert wide["train/loss"].dropna().iloc[-1] < wide["train/loss"].dropna().iloc[0] / 10


def read_events(run_dir):
    (events,) = [p for p in run_dir.rglob("events.out.tfevents.*")]
    assert events.parent == run_dir  # one writer, in the run directory itself
    acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0, HISTOGRAMS: 0})  # 0: keep every sample
    acc.Reload()
    return acc


@pytest.mark.slow  # trains
@pytest.mark.xdist_group("test_cli:default_run")
def test_tensorboard_events_hold_the_same_tags_steps_and_values(default_run):
    _, run_dir = default_run
    acc = read_events(run_dir)
    m = pd.read_csv(run_dir / "metrics.csv")
    assert set(acc.Tags()["scalars"]) == set(m.tag)
    for tag, rows in m.groupby("tag"):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == list(rows.step)
        assert [e.value for e in events] == pytest.approx(list(rows.value), rel=1e-6)  # float32 in the event file


@pytest.mark.slow  # trains
@pytest.mark.xdist_group("test_cli:default_run")
def test_probes_are_in_metrics_csv_histograms_csv_and_tensorboard(default_run):
    _, run_dir = default_run
    m = pd.read_csv(run_dir / "metrics.csv")
    probe_steps = [*range(0, 440, 54), 440]  # 8 evenly spaced between the start and the end of 440 steps
    for tag in ("act/block2/pre_norm/std", "act/block2/post_norm/feature_var_std", "act/block3/dead",
                "affine/block1/gamma_mean", "bn/block3/running_var_ratio", "update_ratio/head"):
        assert list(m[m.tag == tag].step) == [s for s in probe_steps if s or not tag.startswith("update")], tag
    epochs = [22 * e for e in range(1, 21)]
    for tag in ("bn/block2/variance_shift", "val/acc_train_mode", "val/train_eval_gap"):
        assert list(m[m.tag == tag].step) == epochs
    h = pd.read_csv(run_dir / "histograms.csv")
    assert list(h.columns) == ["step", "epoch", "tag", "left", "right", "count"]
    assert {"act/block1/pre_norm", "act/block1/post_norm", "act/block3/post_norm/feature_var",
            "affine/block2/gamma", "affine/block2/beta"} <= set(h.tag)
    per_probe = h.groupby(["tag", "step"])["count"].sum()
    assert (per_probe.loc["act/block1/pre_norm"] == 256 * 128).all()  # every value of the probe batch, once
    assert (per_probe.loc["act/block1/pre_norm/feature_var"] == 128).all()

    acc = read_events(run_dir)
    assert set(acc.Tags()["histograms"]) == set(h.tag)
    for tag, rows in h.groupby("tag"):
        events = acc.Histograms(tag)
        assert [e.step for e in events] == sorted(set(rows.step))
        for e in events:
            bins = rows[rows.step == e.step]
            assert list(e.histogram_value.bucket) == list(bins["count"])
            assert list(e.histogram_value.bucket_limit) == pytest.approx(list(bins.right), rel=1e-6)
            # the smallest value opens the first bin that holds anything (per-feature variances: the
            # bin of zeros from 0, else the first of the log-scale bins)
            assert e.histogram_value.min == pytest.approx(bins.left[bins["count"] > 0].iloc[0], rel=1e-6)


@pytest.mark.slow  # trains
@pytest.mark.xdist_group("test_cli:default_run")
def test_tensorboard_has_the_hparams_entry_and_the_custom_scalars_layout(default_run):
    _, run_dir = default_run
    acc = read_events(run_dir)
    hp = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["norm.name"].string_value == "bn" and start.hparams["lr"].number_value == 0.05
    assert start.hparams["model.depth"].number_value == 3 and start.hparams["status"].string_value == "completed"
    assert isinstance(start.hparams["batch_size"].number_value, float) and "checkpoint" not in start.hparams
    # no experiment of its own: one run's schema would hide the other runs' keys (a sweep writes one)
    assert "_hparams_/experiment" not in hp and "_hparams_/session_end_info" in hp
    assert {"val/acc", "train/loss", "summary/best_val_acc", "summary/steps_to_target"} <= set(acc.Tags()["scalars"])

    # the row is named by the run's directory (its last three parts), not by a hash of its values
    group = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_start_info"]).session_start_info
    assert group.group_name == "/".join(run_dir.resolve().parts[-3:])

    # the layout is the tensor's value; TensorBoard shows the last one written (at the last flush)
    config = acc.Tensors("custom_scalars__config__")[-1]
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts["total gradient norm"] == [r"^grad_norm/total$"]
    assert charts["grad_norm/block2.linear"] == [r"^grad_norm/block2\.linear$"]  # a chart per layer
    assert any(r"variance_shift" in t for tags in charts.values() for t in tags)
    assert "update_ratio/block2.linear" in charts  # recorded from the first probe after step 0
    assert not any("saturated" in t or "landscape" in t for t in charts)  # a ReLU MLP, no landscape probe


@pytest.mark.slow  # trains
def test_summary_has_the_train_eval_gap_precise_bn_gain_and_variance_shift(workdir):
    proc = run_in_process("train", "epochs=5", "progress=false", "dropout=0.5", "norm.precise_bn=true", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(workdir)
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["train_eval_gap"] == pytest.approx(s["final_val_acc_train_mode"] - s["final_val_acc"])
    assert s["precise_bn_gain"] == pytest.approx(s["final_val_acc"] - s["final_val_acc_running_stats"])
    assert set(s["variance_shift"]) == set(s["variance_shift_precise"]) == {"block1", "block2", "block3"}
    assert s["variance_shift"]["block3"] > 1.1 and all(0.9 < v < 1.1 for v in s["variance_shift_precise"].values())
    m = pd.read_csv(run_dir / "metrics.csv")
    assert m[m.tag == "val/acc_running_stats"].value.iloc[-1] == s["final_val_acc_running_stats"]


@pytest.mark.slow  # trains
@pytest.mark.xdist_group("test_cli:default_run")
def test_checkpoint_loads_safely_and_reproduces_the_final_accuracy(default_run):
    _, run_dir = default_run
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "step", "epoch", "rng", "config"} <= set(ckpt)
    assert ckpt["step"] == 440 and ckpt["epoch"] == 20
    cfg = OmegaConf.create(ckpt["config"])
    data = load_data(cfg.data)
    model = build_model(cfg, data.input_shape, data.num_classes)
    model.load_state_dict(ckpt["model"])
    s = json.loads((run_dir / "summary.json").read_text())
    assert evaluate(model, data.val, 1024) == pytest.approx((s["final_val_loss"], s["final_val_acc"]))
    assert not list(run_dir.glob(".*.tmp"))  # no temporary files left by the atomic writes


@pytest.mark.slow  # trains
def test_two_identical_runs_give_identical_metrics(workdir):
    args = ["train", *FAST, "dropout=0.3", "seed=7"]
    assert run_in_process(*args, cwd=workdir).returncode == 0
    assert run_in_process(*args, cwd=workdir).returncode == 0
    a, b = (pd.read_csv(d / "metrics.csv") for d in run_dirs(workdir))
    keep = ["step", "epoch", "tag", "value"]
    a, b = (x[~x.tag.str.startswith("perf/")][keep].reset_index(drop=True) for x in (a, b))
    pd.testing.assert_frame_equal(a, b, check_exact=True)


BAD_INPUT = [
    (["dropout=1.5"], "dropout=1.5"),
    (["lr=-1"], "lr=-1.0"),
    (["batch_size=0"], "batch_size=0"),
    (["epochs=0"], "epochs=0"),
    (["norm=in"], "norm=in"),
    (["norm=gn", "norm.groups=5"], "norm.groups=5"),
    (["model=cnn", "data=blobs"], "model=cnn"),
    (["norm=foo"], "norm=foo"),
    (["placement=middle"], "placement=middle"),
    (["dropout=abc"], "dropout=abc"),
    (["colour=red"], "colour"),
    (["norm=ln", "norm.momentum=0.1"], "norm.momentum"),
    (["model.activation=swish"], "swish"),
    (["data=mnist", "data.root=nowhere"], "data.download=true"),
    (["batch_size=5000"], "batch_size=5000"),
    (["probe_every=-1"], "probe_every=-1"),
    (["probe_batch_size=1"], "probe_batch_size=1"),
    (["norm.precise_bn_batches=0"], "norm.precise_bn_batches=0"),
    (["norm=ln", "norm.precise_bn=true"], "norm.precise_bn"),
    (["+dropuot=0.5"], "dropuot=0.5 is not a setting of normbench (did you mean dropout?)"),  # trained with 0.0
    (["~dropout"], "dropout has no value (deleted with ~dropout?)"),  # failed in the run, exit 1, a traceback
    (["+norm@extra=ln"], "Key 'extra' not in 'TrainConfig'"),
]


@pytest.mark.parametrize("overrides,named", BAD_INPUT, ids=[" ".join(b[0]) for b in BAD_INPUT])
def test_bad_input_gets_one_line_exit_2_and_leaves_nothing(workdir, overrides, named):
    proc = run_in_process("train", *overrides, cwd=workdir)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("normbench: error: ") and named in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (workdir / "outputs").exists()


@pytest.mark.slow  # trains
def test_a_diverging_run_is_recorded_as_diverged_and_exits_0(workdir):
    proc = run_in_process("train", *FAST, "norm=none", "lr=1e4", "log_every=1", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(workdir)
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "diverged" and isinstance(s["diverged_at_step"], int)
    assert "diverged" in proc.stdout


def test_help_lists_the_groups_and_cfg_prints_the_config(workdir):
    proc = run_in_process("train", "--help", cwd=workdir)
    assert proc.returncode == 0
    for line in ("model: cnn, mlp, resnet, vgg, vit", "norm: bn, bn_ghost, brn, gn, gn_ws, in, ln, none, rms, wn",
                 "data: blobs, cifar10, digits, fashion_mnist, mnist", "optim: adam, adamw, sgd",
                 "schedule: constant, cosine, step"):
        assert line in proc.stdout
    proc = run_in_process("train", "--cfg", "job", "model=cnn", "norm=gn", cwd=workdir)
    assert proc.returncode == 0
    cfg = OmegaConf.create(proc.stdout)
    assert cfg.model.name == "cnn" and cfg.model.channels == [32, 64] and cfg.norm.groups == 8
    assert not (workdir / "outputs").exists()


def test_top_level_usage_and_unknown_commands(workdir):
    proc = run_in_process(cwd=workdir)
    assert proc.returncode == 2 and "usage: normbench <command>" in proc.stderr and "train" in proc.stderr
    proc = run_in_process("trian", cwd=workdir)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "normbench: error: unknown command 'trian'; allowed: train, evaluate, report"
    proc = run_in_process("--version", cwd=workdir)
    assert proc.returncode == 0 and proc.stdout.startswith("normbench ")


@pytest.mark.slow  # a real interpreter start
def test_python_m_normbench_is_the_command(workdir):
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "normbench", "--version"], capture_output=True, text=True, cwd=workdir)
    assert proc.returncode == 0 and proc.stdout.startswith("normbench ")


@pytest.mark.slow  # trains
def test_multirun_sweeps_a_grid_into_one_directory_per_job(workdir):
    # one job at a time, in this process (joblib runs n_jobs=1 without workers); the parallel
    # sweep, its worker processes and its terminal lines: test_sweep.py
    proc = run_in_process("train", "-m", "norm=bn,none", "epochs=1", "progress=false", *HERE, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    dirs = run_dirs(workdir)
    assert len(dirs) == 2 and all("multirun" in d.parts for d in dirs)
    norms = sorted(json.loads((d / "summary.json").read_text())["config"]["norm"]["name"] for d in dirs)
    assert norms == ["bn", "none"]


@pytest.mark.slow  # trains
def test_cnn_trains_on_mnist_files_through_the_command(workdir):
    write_mnist(workdir / "data", n_train=200, n_test=20)
    proc = run_in_process("train", "model=cnn", "data=mnist", "norm=gn", "norm.groups=4", "model.channels=[8,16]",
                   "batch_size=32", "epochs=2", "progress=false", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(workdir)
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "completed" and s["steps"] == 2 * (180 // 32)
    assert s["config"]["data"]["root"] == "data"
