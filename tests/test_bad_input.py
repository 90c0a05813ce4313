"""Bad input to ``evaluate`` and to ``train resume=...`` (``train``'s own values are in
test_cli.py): each gets one line naming what is wrong and what is allowed, exit 2, no
traceback, and nothing written. Through the command's own entry function in this process
(``run_in_process``): a refusal needs no interpreter start of its own."""

import pytest
import torch

from conftest import copy_run, run_in_process
from datasets_on_disk import write_mnist
from normbench.rundir import CHECKPOINT


@pytest.fixture
def trained(finished_run):
    """A finished 3-epoch run (shared by the session: read, or copied to be changed)."""
    return finished_run


def _tampered(tmp, run_dir, change):
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    change(state)
    torch.save(state, tmp / "tampered.pt")
    return "tampered.pt"


def _truncated(tmp, run_dir):
    data = (run_dir / CHECKPOINT).read_bytes()
    (tmp / "half.pt").write_bytes(data[: len(data) // 2])
    return ["half.pt"]


def _deeper(state):
    state["config"]["model"]["depth"] = 2


def _bad_dropout(state):
    state["config"]["dropout"] = 2.0


EVALUATE = [  # (name, arguments made in a scratch directory, what the line says)
    ("missing path", lambda tmp, rd: ["nowhere"], "nowhere: no such file or directory"),
    ("directory without a checkpoint", lambda tmp, rd: [str(tmp)], "no checkpoint.pt in this directory"),
    ("random bytes", lambda tmp, rd: [(tmp / "junk.pt").write_bytes(b"\x00not a checkpoint" * 50) and "junk.pt"],
     "not a readable checkpoint"),
    ("truncated checkpoint", _truncated, "not a readable checkpoint"),
    ("not a normbench checkpoint", lambda tmp, rd: [torch.save({"w": torch.ones(2)}, tmp / "w.pt") or "w.pt"],
     "not a normbench checkpoint: no model, optimizer, step, epoch, rng, config"),
    ("weights of another model", lambda tmp, rd: [_tampered(tmp, rd, _deeper)],
     "its weights do not fit the model its config describes (model=mlp, norm=bn)"),
    ("config that cannot be built", lambda tmp, rd: [_tampered(tmp, rd, _bad_dropout)],
     "its config is not one normbench can build: dropout=2.0 is not allowed"),
    ("split=test on digits", lambda tmp, rd: [str(rd), "split=test"], "split=test is not allowed for data=digits"),
    ("unknown split", lambda tmp, rd: [str(rd), "split=train"], "split=train is not allowed; allowed: val, test"),
    ("unknown option", lambda tmp, rd: [str(rd), "foo=1"], "foo=1 is not an option of evaluate"),
    ("unknown flag", lambda tmp, rd: [str(rd), "--verbose"], "--verbose is not an option of evaluate"),
    ("two paths", lambda tmp, rd: [str(rd), str(rd)], "evaluate takes one run directory or checkpoint, got 2"),
    ("no path", lambda tmp, rd: [], "evaluate takes one run directory or checkpoint, got 0"),
    ("device=cuda without one", lambda tmp, rd: [str(rd), "device=cuda"], "device=cuda is not allowed here"),
    ("Hydra's ~ form", lambda tmp, rd: [str(rd), "~split"], "~split: evaluate has no Hydra overrides"),
    ("a negative step", lambda tmp, rd: [_tampered(tmp, rd, lambda s: s.update(step=-5))],
     "tampered.pt: refused: step=-5 is not a count"),
]


def assert_one_line(proc, expected):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("normbench: error: ") and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and proc.stdout == ""


@pytest.mark.parametrize("make,expected", [(m, e) for _, m, e in EVALUATE], ids=[n for n, _, _ in EVALUATE])
def test_evaluate_refuses_bad_input_in_one_line(trained, tmp_path, make, expected):
    if "cuda" in expected and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = make(tmp_path, trained)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_one_line(run_in_process("evaluate", *args, cwd=tmp_path), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


RESUME = [
    ("no such directory", lambda tmp, rd: ["resume=nowhere"], "resume=nowhere: no such directory"),
    ("not a run directory", lambda tmp, rd: [f"resume={tmp}"], "not a run directory: no .hydra/overrides.yaml"),
    ("a changed setting", lambda tmp, rd: [f"resume={copy_run(rd, tmp)}", "lr=0.1"],
     "lr=0.1 differs from the run's lr=0.05"),
    ("fewer epochs than done", lambda tmp, rd: [f"resume={copy_run(rd, tmp)}", "epochs=1"],
     "epochs=1 is not allowed with resume="),
    ("checkpoint deleted", lambda tmp, rd: [f"resume={(copy_run(rd, tmp) / CHECKPOINT).unlink() or tmp / 'run'}"],
     "no checkpoint.pt in this directory"),
    ("a checkpoint with a negative step", lambda tmp, rd: [f"resume={_steps(copy_run(rd, tmp), -5)}", "epochs=4"],
     "checkpoint.pt: refused: step=-5 is not a count"),  # resumed at step -5 before
]


def _steps(run, step):
    state = torch.load(run / CHECKPOINT, weights_only=True)
    state["step"] = step
    torch.save(state, run / CHECKPOINT)
    return run


@pytest.mark.parametrize("make,expected", [(m, e) for _, m, e in RESUME], ids=[n for n, _, _ in RESUME])
def test_resume_refuses_bad_input_and_leaves_the_run_alone(trained, tmp_path, make, expected):
    args = make(tmp_path, trained)
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and ".hydra" not in p.parts}
    assert_one_line(run_in_process("train", *args, "progress=false", cwd=tmp_path), expected)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and ".hydra" not in p.parts}
    assert after == files  # the run's summary, metrics, log and checkpoint as they were
    if (tmp_path / "run").exists():
        assert (tmp_path / "run" / ".hydra" / "config.yaml").exists()  # never removed from a run being resumed
    assert not (tmp_path / "outputs").exists()


def test_resuming_a_finished_run_does_nothing(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    summary = (run / "summary.json").read_bytes()
    proc = run_in_process("train", f"resume={run}", cwd=tmp_path)
    assert proc.returncode == 0 and "the run has done its 66 steps (3 epochs); nothing to do" in proc.stdout
    assert (run / "summary.json").read_bytes() == summary


def test_corrupt_data_files_are_refused_in_one_line(workdir):
    raw = write_mnist(workdir / "data", n_train=100, n_test=10)
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    proc = run_in_process("train", "model=cnn", "data=mnist", "epochs=1", cwd=workdir)
    assert_one_line(proc, "data=mnist: could not read the files in data/MNIST/raw")
    assert not (workdir / "outputs").exists()



@pytest.mark.parametrize("labels, why", [
    ([*range(10)] * 12, "train-labels-idx1-ubyte: 100 images but 120 labels"),  # an IndexError in the run before
    ([255] + [*range(10)] * 9 + [*range(9)], "train-labels-idx1-ubyte: label 255 is not a class of MNIST"),  # said to be about val_fraction
])
def test_data_files_that_contradict_themselves_are_refused_before_training(workdir, labels, why):
    import numpy as np

    from datasets_on_disk import _idx

    raw = write_mnist(workdir / "data", n_train=100, n_test=10)
    _idx(raw / "train-labels-idx1-ubyte", np.array(labels))
    assert_one_line(run_in_process("train", "data=mnist", "epochs=1", "batch_size=16", cwd=workdir),
                    f"data=mnist: data/MNIST/raw/train-images-idx3-ubyte and {why}")
    assert not (workdir / "outputs").exists()
