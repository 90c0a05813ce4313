"""Every row of every axis table trains through the real command: each norm on each model
it has a form for (its loss falling, its run directory and report complete), each model,
optimizer, schedule and data set (the torchvision ones from tiny files in their real
formats). Adding a row without its YAML file, or a YAML file whose keys its schema lacks,
fails here; the norms and models come from the tables, so a new row is tested here. One
sweep per table (and per model), each through the command's entry function in this process
with its jobs one after another here (no interpreter or worker process to start)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import HERE, run_in_process
from datasets_on_disk import write_cifar10, write_mnist
from normbench.data import DATASETS
from normbench.models import MODELS
from normbench.norms import NORMS
from normbench.optim import OPTIMIZERS
from normbench.schedules import SCHEDULES

pytestmark = pytest.mark.slow
# probes every 10 steps: 3 to 5 a run (every site still probed) instead of the default 10
QUICK = ["epochs=1", "progress=false", "checkpoint=false", "probe_every=10"]
# each model small, on small generated images (the MLP and the CNN on the digits), a few steps
SMALL = {
    "mlp": ["model=mlp"],
    "cnn": ["model=cnn", "model.channels=[8,16]"],
    "vgg": ["model=vgg", "model.width_multiplier=0.125", "init=kaiming"],  # 8 convs without a norm need it
    "resnet": ["model=resnet", "model.depth=8"],
    "vit": ["model=vit", "model.depth=2", "model.dim=32", "model.patch=2"],
}
IMAGES = ["data=synthetic", "data.shape=[3,8,8]", "data.n_samples=480", "data.noise=2.0", "epochs=null", "steps=40",
          "batch_size=16"]
PAIRS = [(n, m) for m, row in MODELS.items() for n, norm in NORMS.items() if norm.build(row.kind) is not None]


def statuses(sweep_root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_root.rglob("summary.json")}


# one sweep per table (and per model, of the norms it has a form for)
SWEEPS = {
    **{f"norm/{m}": [*SMALL[m], *(IMAGES if m not in ("mlp", "cnn") else []),
                     f"norm={','.join(n for n, mm in PAIRS if mm == m)}"] for m in MODELS},
    "model": [f"model={','.join(MODELS)}", "data.augment=crop_flip"],  # each as its YAML file has it
    "optim": [f"optim={','.join(OPTIMIZERS)}", f"schedule={','.join(SCHEDULES)}", "schedule.warmup_steps=5"],
    "data": ["data=digits,blobs,mnist,fashion_mnist", "model=mlp", "batch_size=16"],  # data.root: ./data
    "data/synthetic": ["data=synthetic", "data.n_samples=200", "data.shape=[3,8,8],[12]", "batch_size=16"],
}


def on(sweep: str, *values, **kwargs):
    """A test case that reads ``sweep``: under pytest-xdist (``--dist loadgroup``) every case
    of one sweep runs in the worker that builds it, so each sweep is built once."""
    return pytest.param(*values, marks=pytest.mark.xdist_group(f"tables:{sweep}"), **kwargs)


class Sweeps(dict):
    """sweep name -> (what train printed, {job: summary}, the report's outcome or None, its
    directory), each sweep run the first time a test asks for it."""

    def __init__(self, cwd: Path):
        super().__init__()
        self.cwd = cwd
        write_mnist(cwd / "data", folder="MNIST", n_train=120, n_test=20)
        write_mnist(cwd / "data", folder="FashionMNIST", n_train=120, n_test=20)

    def __missing__(self, name: str):
        out = self.cwd / "outputs" / name.replace("/", "_")
        proc = run_in_process("train", "-m", *QUICK, *SWEEPS[name], f"hydra.sweep.dir={out}", *HERE, cwd=self.cwd)
        report = run_in_process("report", str(out), cwd=self.cwd) if name.startswith("norm/") else None
        self[name] = (proc, statuses(out), report, out)
        return self[name]


@pytest.fixture(scope="session")  # see conftest: built once, in one worker
def rows(tmp_path_factory) -> Sweeps:
    return Sweeps(tmp_path_factory.mktemp("tables"))


# every norm on every model it has a form for (the others are refused in one line with the
# reason: test_validate, test_architectures)
@pytest.mark.parametrize("norm, model", [on(f"norm/{m}", n, m) for n, m in PAIRS])
def test_every_norm_trains_on_each_model_it_has_a_form_for(rows, norm, model):
    proc, summaries, _, _ = rows[f"norm/{model}"]
    (s,) = [s for s in summaries.values() if s["config"]["norm"]["name"] == norm] or [None]
    assert s is not None, proc.stdout + proc.stderr
    assert s["status"] == "completed" and s["steps"] > 0, s.get("error")
    assert s["sites"] and all({"name", "block", "norm", "layer", "act", "role"} <= set(site) for site in s["sites"])
    run_dir = Path(s["run_dir"])
    assert {"summary.json", "metrics.csv", "histograms.csv", ".hydra"} <= {p.name for p in run_dir.iterdir()}
    assert list(run_dir.glob("events.out.tfevents.*"))
    losses = [float(line.split(",")[3]) for line in (run_dir / "metrics.csv").read_text().splitlines()
              if ",train/loss," in line]
    assert losses[-1] < losses[0], (norm, model, losses)  # it learns
    histograms = (run_dir / "histograms.csv").read_text()
    assert all(f",act/{site['name']}/pre_norm," in histograms for site in s["sites"])  # every site probed


@pytest.mark.parametrize("model", [on(f"norm/{m}", m) for m in MODELS])
def test_each_models_sweep_reports_with_every_picture(rows, model):
    _, _, report, out = rows[f"norm/{model}"]
    assert report.returncode == 0, report.stderr
    page = (out / "report" / "report.html").read_text()
    assert "Not drawn" not in page and page.count('<img src="data:image/png;base64,') >= 5


@pytest.mark.parametrize("table, key, names", [on("model", "model", "model", list(MODELS), id="model"),
                                               on("optim", "optim", "optim", list(OPTIMIZERS), id="optim"),
                                               on("optim", "optim", "schedule", list(SCHEDULES), id="schedule")])
def test_every_model_optimizer_and_schedule_trains(rows, table, key, names):
    proc, summaries, _, _ = rows[table]
    assert proc.returncode == 0, proc.stderr
    assert sorted(set(s["config"][key]["name"] for s in summaries.values())) == sorted(names)
    assert all(s["status"] == "completed" for s in summaries.values())


@pytest.mark.xdist_group("tables:data")
def test_every_data_set_trains(rows, tmp_path, monkeypatch):
    proc, summaries, _, _ = rows["data"]
    assert proc.returncode == 0, proc.stderr
    done = {s["config"]["data"]["name"]: s["status"] for s in summaries.values()}
    assert done == dict.fromkeys(["digits", "blobs", "mnist", "fashion_mnist"], "completed")
    proc, summaries, _, _ = rows["data/synthetic"]  # images and feature vectors
    assert proc.returncode == 0 and sorted(s["status"] for s in summaries.values()) == ["completed"] * 2
    # CIFAR-10's files are checked against the real data set's checksums by torchvision:
    # the command runs told the checksums of the tiny files made here
    from torchvision import datasets

    md5 = write_cifar10(tmp_path / "data")
    monkeypatch.setattr(datasets.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                                   "md5": md5["batches.meta"]})
    proc = run_in_process("train", "data=cifar10", "data.root=data", "model=cnn", "batch_size=16", *QUICK,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (summary,) = tmp_path.glob("outputs/runs/*/*/summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"
    assert set(DATASETS) == {"digits", "synthetic", "blobs", "mnist", "fashion_mnist", "cifar10"}
