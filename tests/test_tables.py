"""Every row of every axis table trains through the real command: each norm (on the
models it is meant for), model, optimizer and data set (the torchvision ones from tiny
files in their real formats). Adding a row without its YAML file, or a YAML file whose
keys its schema lacks, fails here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from datasets_on_disk import write_cifar10, write_mnist
from normbench.data import DATASETS
from normbench.models import MODELS
from normbench.norms import NORMS
from normbench.optim import OPTIMIZERS

pytestmark = pytest.mark.slow
QUICK = ["epochs=1", "progress=false", "checkpoint=false"]


def statuses(sweep_root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_root.rglob("summary.json")}


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """(axis, row) -> the summary of the run that trained it."""
    cwd = tmp_path_factory.mktemp("tables")
    write_mnist(cwd / "data", folder="MNIST", n_train=120, n_test=20)
    write_mnist(cwd / "data", folder="FashionMNIST", n_train=120, n_test=20)
    sweeps = {  # one sweep per table (and per model the norms are meant for)
        "norm/cnn": ["model=cnn", "model.channels=[8,16]", f"norm={','.join(NORMS)}"],
        "norm/mlp": ["model=mlp", f"norm={','.join(n for n, r in NORMS.items() if r.vectors)}"],
        "model": [f"model={','.join(MODELS)}"],
        "optim": [f"optim={','.join(OPTIMIZERS)}"],
        "data": ["data=digits,blobs,mnist,fashion_mnist", "model=mlp", "batch_size=16"],  # data.root: ./data
        "data/synthetic": ["data=synthetic", "data.n_samples=200", "data.shape=[3,8,8],[12]", "batch_size=16"],
    }
    found = {}
    for name, args in sweeps.items():
        out = cwd / "outputs" / name.replace("/", "_")
        proc = run_cli("train", "-m", *QUICK, *args, f"hydra.sweep.dir={out}", cwd=cwd, timeout=900)
        found[name] = (proc, statuses(out))
    return found


# every norm on the CNN, and on the MLP those with a form for feature vectors (the others
# are refused with model=mlp: test_validate, test_cli)
PAIRS = [(n, "cnn") for n in NORMS] + [(n, "mlp") for n, r in NORMS.items() if r.vectors]


@pytest.mark.parametrize("norm, model", PAIRS)
def test_every_norm_trains_on_each_model_it_is_meant_for(rows, norm, model):
    proc, summaries = rows[f"norm/{model}"]
    (s,) = [s for s in summaries.values() if s["config"]["norm"]["name"] == norm] or [None]
    assert s is not None, proc.stdout + proc.stderr
    assert s["status"] == "completed" and s["steps"] > 0, s.get("error")


@pytest.mark.parametrize("table, key, names", [("model", "model", list(MODELS)), ("optim", "optim", list(OPTIMIZERS))])
def test_every_model_and_optimizer_trains(rows, table, key, names):
    proc, summaries = rows[table]
    assert proc.returncode == 0, proc.stderr
    assert sorted(s["config"][key]["name"] for s in summaries.values()) == sorted(names)
    assert all(s["status"] == "completed" for s in summaries.values())


def test_every_data_set_trains(rows, tmp_path):
    proc, summaries = rows["data"]
    assert proc.returncode == 0, proc.stderr
    done = {s["config"]["data"]["name"]: s["status"] for s in summaries.values()}
    assert done == dict.fromkeys(["digits", "blobs", "mnist", "fashion_mnist"], "completed")
    proc, summaries = rows["data/synthetic"]  # images and feature vectors
    assert proc.returncode == 0 and sorted(s["status"] for s in summaries.values()) == ["completed"] * 2
    # CIFAR-10's files are checked against the real data set's checksums by torchvision:
    # the command runs in a process told the checksums of the tiny files made here
    md5 = write_cifar10(tmp_path / "data")
    code = ("import sys\nfrom torchvision import datasets\n"
            f"md5 = {md5!r}\n"
            "datasets.CIFAR10.train_list = [[f'data_batch_{i}', md5[f'data_batch_{i}']] for i in range(1, 6)]\n"
            "datasets.CIFAR10.test_list = [['test_batch', md5['test_batch']]]\n"
            "datasets.CIFAR10.meta = {'filename': 'batches.meta', 'key': 'label_names', 'md5': md5['batches.meta']}\n"
            "from normbench.cli import main\n"
            "sys.exit(main(['train', 'data=cifar10', 'data.root=data', 'model=cnn', 'batch_size=16', *sys.argv[1:]]))")
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code, *QUICK], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    (summary,) = tmp_path.glob("outputs/runs/*/*/summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"
    assert set(DATASETS) == {"digits", "synthetic", "blobs", "mnist", "fashion_mnist", "cifar10"}
