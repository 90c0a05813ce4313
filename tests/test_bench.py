"""The benchmark script runs from a checkout and prints its figures (no timing is asserted)."""

import pytest
import re
import subprocess
import sys
from pathlib import Path

pytestmark = pytest.mark.slow  # end to end: the real command in a subprocess

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"
NUM = r"\d+\.\d"
RATIO = r"\d+\.\d{3}"  # a ratio (on a loaded machine it can be far from 1)


def test_bench_prints_throughput_for_both_models_the_start_up_times_and_a_whole_run():
    proc = subprocess.run([sys.executable, str(BENCH), "--epochs", "1", "--repeats", "1", "--startup-repeats", "1",
                           "--import-repeats", "1", "--run-repeats", "1", "--run-epochs", "1", "--device", "cpu",
                           "norm=gn"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "probes every 2 steps and the last (12 probes; probe_every=None), log_every=10" in out
    for model in ("mlp", "cnn"):  # model device data input batch steps a b c d b/a c/a c/b d/b ms/probe samples/s aug
        row = (rf"^  {model} +cpu +digits +1x8x8 +64 +22 +{NUM} +{NUM} +{NUM} +{NUM} +{RATIO} +{RATIO} +{RATIO} "
               rf"+{RATIO} +-?{NUM} +\d+  pad 1, flip false$")
        assert re.search(row, out, re.M), out
    for name in ('python -c "import torch"', "bare loop script", "normbench train epochs=1 progress=false",
                 "bare loop script, gc.freeze() at its end"):
        assert re.search(rf"^  {re.escape(name)}.* {NUM}\d s  \({NUM}\d-{NUM}\d\)$", out, re.M), out
    for name in ("normbench - import torch", "normbench - bare loop script", "bare loop script - import torch",
                 "normbench - bare loop script frozen at its end"):
        assert re.search(rf"^  {name} +[+-]{NUM}\d s$", out, re.M), out
    # the imports beyond the bare script, by package: normbench's own among them
    assert re.search(r"^  what normbench imports beyond the bare script .*: \d\.\d\d s$", out, re.M), out
    assert re.search(r"^    .*\bnormbench \d\.\d{3}\b", out, re.M), out
    assert "whole run: the digits MLP, 1 epochs at batch 8" in out
    for name in ("bare script (1 epochs, batch 8)", "normbench train probe_every=0", "normbench train (default probes)",
                 "bare script, gc.freeze() at its end"):
        assert re.search(rf"^  {re.escape(name)} +{NUM}\d s  \({NUM}\d-{NUM}\d\)$", out, re.M), out
    for name in ("probes off / bare script", "default probes / bare script", "probes off / bare script frozen at its end",
                 "default probes / bare script frozen at its end"):
        assert re.search(rf"^  {re.escape(name)} +{RATIO}$", out, re.M), out


def test_bench_times_the_cnn_on_cifar_shaped_synthetic_images_with_the_gpu_options():
    proc = subprocess.run([sys.executable, str(BENCH), "--model", "cnn", "--device", "cpu", "--data", "synthetic",
                           "--batch-size", "32", "--amp", "bf16", "--channels-last", "--epochs", "1", "--repeats", "1",
                           "--no-startup", "--run-repeats", "0", "data.n_samples=200", "model.channels=[8,16]"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "amp=bf16, channels_last=True, compile=False" in proc.stdout
    assert re.search(r"^  cnn +cpu +synthetic +3x32x32 +32 +5 ", proc.stdout, re.M), proc.stdout
    assert "start-up" not in proc.stdout


def test_bench_times_the_new_models_each_with_its_own_settings():
    proc = subprocess.run([sys.executable, str(BENCH), "--model", "resnet,vgg,vit", "--device", "cpu", "--data",
                           "synthetic", "--batch-size", "16", "--channels-last", "--epochs", "1", "--repeats", "1",
                           "--no-startup", "--run-repeats", "0", "data.n_samples=100", "data.shape=[3,8,8]",
                           "--model-settings", "resnet:model.depth=8", "--model-settings", "vgg:model.width_multiplier=0.125",
                           "--model-settings", "vit:model.depth=1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for model in ("resnet", "vgg", "vit"):
        assert re.search(rf"^  {model} +cpu +synthetic +3x8x8 +16 +5 +{NUM}", proc.stdout, re.M), proc.stdout


def test_bench_times_a_sweep_in_parallel_against_one_job_at_a_time():
    proc = subprocess.run([sys.executable, str(BENCH), "--no-throughput", "--no-startup", "--run-repeats", "0",
                           "--sweep-repeats", "1", "--sweep-runs", "2", "epochs=1"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "sweep: 2 runs (seeds) of the default config epochs=1," in out
    for name in ("parallel (one job per core)", "sequential (hydra.launcher.n_jobs=1)"):
        assert re.search(rf"^  {re.escape(name)} +{NUM}\d s  \({NUM}\d-{NUM}\d\)$", out, re.M), out
    assert re.search(r"^  parallel / sequential +\d\.\d{3}$", out, re.M), out
    # what the jobs alone allow, from each job's own summary.json
    for way, threads in (("parallel", 1), ("sequential", 2)):
        assert re.search(rf"^  one job, {way} \({threads} threads\) +{NUM}\d s \(median of 2, its run.train\)$", out,
                         re.M), out
    assert re.search(r"^  jobs alone: parallel / sequential +\d\.\d{3}  \(no start-up, 2 at once\)$", out, re.M), out
    assert "throughput:" not in out and "start-up:" not in out and "whole run:" not in out
