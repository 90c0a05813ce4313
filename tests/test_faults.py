"""Faults: real signals to a real ``normbench train``, resume, SIGKILL, divergence, safe
checkpoints and ``normbench evaluate``; a full disk, and a closed or broken terminal.
What only a real process shows (a signal, kill -9, a terminal) runs the installed command
in a subprocess; the rest (the uninterrupted references, resuming, refusals) goes through
the command's entry function in this process (``run_in_process``)."""

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import copy_run, normbench_command, run_dirs, run_in_process
from normbench.checkpoint import save_checkpoint
from normbench.rundir import CHECKPOINT
from test_trainer import collect, trainer_for


# 660 steps; dropout: the RNG matters too; a warm-up over the first 300 steps, then a cosine to 0.001, and the
# augmentation's own generator: a stop in the middle of the warm-up resumes to the same learning rates and batches
ARGS = ["train", "epochs=30", "dropout=0.3", "schedule=cosine", "schedule.warmup_steps=300", "schedule.min_lr=0.001",
        "data.augment=crop_flip", "progress=false"]
COMPARED = ["step", "epoch", "tag", "value"]  # wall_time and perf/ differ between any two runs


def start(cwd: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen(normbench_command() + list(args), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_step(cwd: Path, step: int, proc: subprocess.Popen, file: str = "metrics.csv") -> Path:
    """The run directory, once its metrics.csv has a row at ``step`` or later (and ``file`` exists)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for d in (cwd / "outputs").glob("runs/*/*"):
            m = d / "metrics.csv"
            if (d / file).exists() and m.exists():
                rows = m.read_text().splitlines()[1:]
                if any(r.split(",")[0].isdigit() and int(r.split(",")[0]) >= step for r in rows[:-1]):
                    return d
        time.sleep(0.02)
    raise AssertionError("the run did not get there in time")


def results(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    m = pd.read_csv(run_dir / "metrics.csv")
    m = m[~m.tag.str.startswith("perf/")][COMPARED].reset_index(drop=True)
    s = json.loads((run_dir / "summary.json").read_text())
    numbers = {k: v for k, v in s.items() if k.startswith(("final_", "best_", "steps", "epochs", "variance"))
               and k not in ("steps_per_s",)}
    return m, pd.read_csv(run_dir / "histograms.csv"), numbers


@pytest.fixture(scope="session")  # see conftest: built once, in one worker
def uninterrupted(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("uninterrupted")
    assert run_in_process(*ARGS, cwd=cwd).returncode == 0
    (run_dir,) = run_dirs(cwd)
    return results(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
@pytest.mark.xdist_group("test_faults:uninterrupted")
def test_a_signal_ends_the_run_cleanly_and_resume_gives_the_uninterrupted_numbers(workdir, uninterrupted, signum,
                                                                                 code):
    proc = start(workdir, *ARGS)
    run_dir = wait_for_step(workdir, 100, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "stopping after this step" in err and "Traceback" not in err
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "interrupted" and 100 <= s["steps"] < 660
    ckpt = torch.load(run_dir / CHECKPOINT, weights_only=True)
    assert ckpt["step"] == s["steps"]  # saved where it stopped, mid-epoch
    assert pd.read_csv(run_dir / "metrics.csv").step.max() <= s["steps"]

    proc = run_in_process("train", f"resume={run_dir}", "progress=false", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert run_dirs(workdir) == [run_dir]  # in the run's own directory
    metrics, histograms, numbers = results(run_dir)
    expected_metrics, expected_histograms, expected_numbers = uninterrupted
    pd.testing.assert_frame_equal(metrics, expected_metrics, check_exact=True)
    pd.testing.assert_frame_equal(histograms, expected_histograms, check_exact=True)
    assert numbers == expected_numbers
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


RESNET = ["train", "model=resnet", "model.depth=8", "data=synthetic", "data.shape=[3,8,8]", "data.n_samples=600",
          "data.augment=crop_flip", "schedule=step", "schedule.milestones=[2.5]", "schedule.warmup_epochs=0.5",
          "batch_size=16", "epochs=10", "probe_every=20", "dropout=0.1", "progress=false"]  # 30 steps an epoch, 300


@pytest.mark.slow
def test_a_resnet_with_augmentation_and_a_schedule_stopped_and_resumed_equals_an_uninterrupted_one(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    whole.mkdir(), part.mkdir()
    assert run_in_process(*RESNET, cwd=whole).returncode == 0
    proc = start(part, *RESNET)
    run_dir = wait_for_step(part, 40, proc)  # past the warm-up (15 steps), before the milestone (75)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130 and json.loads((run_dir / "summary.json").read_text())["steps"] < 300
    assert run_in_process("train", f"resume={run_dir}", "progress=false", cwd=part).returncode == 0
    (expected,) = run_dirs(whole)
    got, want = results(run_dir), results(expected)
    pd.testing.assert_frame_equal(got[0], want[0], check_exact=True)
    pd.testing.assert_frame_equal(got[1], want[1], check_exact=True)
    assert got[2] == want[2]


@pytest.mark.slow
@pytest.mark.xdist_group("test_faults:uninterrupted")
def test_the_lr_rises_through_the_warm_up_then_falls_to_min_lr(uninterrupted):
    lr = uninterrupted[0].query("tag == 'lr'").set_index("step")["value"]
    peak = lr.idxmax()
    assert lr.index[-1] == 660 and 290 <= peak <= 310 and lr.max() == pytest.approx(0.05, rel=1e-2)
    assert lr.loc[:peak].is_monotonic_increasing and lr.loc[peak:].is_monotonic_decreasing
    assert lr.iloc[0] < 0.01 and lr.iloc[-1] == pytest.approx(0.001)


@pytest.mark.slow
@pytest.mark.xdist_group("test_faults:uninterrupted")
def test_sigkill_leaves_a_whole_checkpoint_and_a_resumable_run(workdir, uninterrupted):
    proc = start(workdir, *ARGS)
    run_dir = wait_for_step(workdir, 250, proc, file=CHECKPOINT)
    proc.kill()
    proc.wait()
    ckpt = torch.load(run_dir / CHECKPOINT, weights_only=True)  # never torn: written atomically
    assert ckpt["step"] % 22 == 0 and ckpt["step"] >= 22
    proc = run_in_process("train", f"resume={run_dir}", "progress=false", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert not list(run_dir.glob(".*.tmp"))  # a write the kill cut short is cleaned up
    metrics, histograms, numbers = results(run_dir)
    pd.testing.assert_frame_equal(metrics, uninterrupted[0], check_exact=True)
    assert numbers == uninterrupted[2]


def test_an_interrupted_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"step": 1, "w": torch.ones(3)})
    real_fsync = os.fsync

    def full_disk(fd):  # the bytes are in the temporary file, not yet on disk: the write fails there
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as raised:
        save_checkpoint(tmp_path, {"step": 2, "w": torch.zeros(3)})  # written by another thread, raised here
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / CHECKPOINT)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]


def test_divergence_is_reported_at_the_step_it_happened_with_the_last_finite_metrics():
    outcome, rows = collect(trainer_for("norm=none", "lr=1e4", "epochs=5", "log_every=1"))
    first_bad = next(s for s, _, m in rows if "train/loss" in m and not m["train/loss"] < float("inf"))
    outcome10, _ = collect(trainer_for("norm=none", "lr=1e4", "epochs=5", "log_every=10"))
    assert outcome.status == outcome10.status == "diverged"
    assert outcome.diverged_at_step == outcome10.diverged_at_step == first_bad
    assert first_bad % 10 != 0  # found inside a logging window, not at its end
    last_finite = next(m for s, _, m in rows if s == first_bad - 1 and "train/loss" in m)
    assert outcome.final["train/loss"] == last_finite["train/loss"] < float("inf")  # kept, not the NaN
    assert "train/loss" not in outcome10.final  # no finite window was recorded: nothing to keep


def test_evaluate_prints_what_training_recorded(finished_run, workdir):
    run_dir = finished_run  # epochs=3, dropout=0.2
    s = json.loads((run_dir / "summary.json").read_text())
    proc = run_in_process("evaluate", str(run_dir), "--json", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert (r["loss"], r["acc"]) == (pytest.approx(s["final_val_loss"], rel=1e-6), s["final_val_acc"])
    assert r["samples"] == 360 and r["step"] == 66 and r["epoch"] == 3
    proc = run_in_process("evaluate", str(run_dir / CHECKPOINT), cwd=workdir.parent)
    assert proc.returncode == 0 and proc.stdout.startswith(f"val: loss {s['final_val_loss']:.4f}  acc "
                                                           f"{s['final_val_acc']:.4f}  (360 samples, eval mode")


def test_a_checkpoint_from_before_the_newer_keys_still_evaluates_and_resumes(finished_run, workdir):
    # checkpoints made before amp, channels_last, compile, threads, jobs_per_gpu, schedules, budgets in steps,
    # lr scaling, weight decay per group and augmentation existed lack them
    run_dir = copy_run(finished_run, workdir)  # 3 epochs
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    config = state["config"]
    for key in ("amp", "channels_last", "compile", "threads", "jobs_per_gpu", "steps", "lr_scaling",
                "base_batch_size", "schedule"):
        del config[key]
    config["epochs"] = 3
    for group, keys in (("optim", ("norm_weight_decay", "bias_weight_decay")),
                        ("data", ("augment", "augment_pad", "augment_flip"))):
        for key in keys:
            del config[group][key]
    del state["schedule"], state["augment"]
    torch.save(state, run_dir / CHECKPOINT)
    s = json.loads((run_dir / "summary.json").read_text())
    proc = run_in_process("evaluate", str(run_dir), "--json", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["acc"] == s["final_val_acc"]
    proc = run_in_process("train", f"resume={run_dir}", "epochs=4", "progress=false", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run_dir / "summary.json").read_text())["epochs_completed"] == 4


def test_a_checkpoint_that_would_run_code_is_refused(workdir):
    marker = workdir / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": Payload(), "config": {}}, workdir / "evil.pt")
    proc = run_in_process("evaluate", "evil.pt", cwd=workdir)
    assert proc.returncode == 2 and not marker.exists()
    assert proc.stderr.startswith("normbench: error: evil.pt: refused: it holds pickled Python objects")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write or flush fails: no file named


def _full_disk_at_checkpoint(m: pytest.MonkeyPatch) -> None:
    """Writing checkpoint.pt's bytes fails as on a full disk (the write, in its own thread)."""
    import normbench.checkpoint
    from normbench.files import atomic_write

    m.setattr(normbench.checkpoint, "atomic_write", lambda path, write: atomic_write(path, _full_disk))


def _files(run_dir: Path) -> dict:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def test_an_extension_that_fails_keeps_the_finished_run_whole(in_process, tmp_path, monkeypatch):
    assert in_process("train", "epochs=1", "progress=false", "hydra.run.dir=R").returncode == 0
    run = tmp_path / "R"
    before = _files(run)
    with monkeypatch.context() as m:
        _full_disk_at_checkpoint(m)  # the disk fills up during the extension
        proc = in_process("train", "resume=R", "epochs=2", "progress=false")
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("normbench: error: run failed: no space left on ")
    assert f"writing {run / 'checkpoint.pt'}" in err[0] and "completed result is kept" in err[0]
    after = _files(run)
    for name in before:  # the finished run as it was: summary, checkpoint, CSVs, TensorBoard, .hydra/
        if name != "train.log":
            assert after[name] == before[name], name
    assert set(after) - set(before) == {"extension.json"}  # the attempt, recorded beside it
    attempt = json.loads((run / "extension.json").read_text())
    assert attempt["status"] == "failed" and attempt["error"].startswith("no space left on ")
    assert "Traceback" in (run / "train.log").read_text()
    assert in_process("train", "resume=R", "epochs=2", "progress=false").returncode == 0  # space again: it extends
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "completed" and s["epochs_completed"] == 2 and not (run / "extension.json").exists()


def test_a_full_disk_is_named_in_one_line(in_process, tmp_path, monkeypatch):
    real = os.statvfs

    class Full:
        def __init__(self, fs):
            self.f_flag, self.f_frsize, self.f_blocks, self.f_bavail = fs.f_flag, fs.f_frsize, fs.f_blocks, 0

    with monkeypatch.context() as m:  # full at the start: refused before anything is written
        m.setattr(os, "statvfs", lambda p: Full(real(p)))
        proc = in_process("train", "epochs=1", "progress=false", "hydra.run.dir=R")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("normbench: error: hydra.run.dir=R: no space left on ")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with monkeypatch.context() as m:  # full during the run: recorded, and named
        _full_disk_at_checkpoint(m)
        proc = in_process("train", "epochs=1", "progress=false", "hydra.run.dir=R")
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "no space left on" in err[0] and "Traceback" not in err[0]
    s = json.loads((tmp_path / "R" / "summary.json").read_text())
    assert s["status"] == "failed" and s["error"].endswith(f"writing {tmp_path / 'R' / 'checkpoint.pt'}")


def _shell(command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PATH"] = f"{Path(normbench_command()[0]).parent}:{env['PATH']}"
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_a_closed_or_broken_terminal_never_fails_a_run(workdir):
    proc = _shell("normbench train epochs=1 hydra.run.dir=a 2>&-", workdir)  # stderr closed
    assert proc.returncode == 0, proc.stdout
    proc = _shell("normbench train epochs=3 hydra.run.dir=b 2>&1 | head -1; exit ${PIPESTATUS[0]}", workdir)
    assert proc.returncode == 0 and proc.stdout.startswith("epoch 1/3"), proc.stdout + proc.stderr
    for run in ("a", "b"):  # the run's files are the result, whatever became of the terminal
        assert json.loads((workdir / run / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_a_closed_or_broken_terminal_never_fails_a_sweep(workdir):
    proc = _shell("normbench train -m seed=0,1 epochs=1 hydra.sweep.dir=piped | head -1; exit ${PIPESTATUS[0]}",
                  workdir)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    proc = _shell("normbench train -m seed=0,1 epochs=1 hydra.sweep.dir=closed >&-", workdir)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    for sweep in ("piped", "closed"):
        statuses = [json.loads(p.read_text())["status"] for p in (workdir / sweep).glob("seed=*/summary.json")]
        assert statuses == ["completed", "completed"], sweep


@pytest.mark.slow
def test_a_report_survives_a_closed_or_narrow_terminal(workdir):
    from report_fixtures import write_run

    for seed in (0, 1):
        write_run(workdir / "sweep" / f"seed={seed}", seed=seed)
    proc = _shell("normbench report sweep --no-pictures --out closed >&-", workdir)
    assert proc.returncode == 0 and proc.stderr == "" and (workdir / "closed" / "report.html").exists()
    proc = _shell("PYTHONIOENCODING=ascii normbench report sweep --no-pictures --out narrow", workdir)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "\\xb1" in proc.stdout  # ± written as an escape on a terminal that cannot encode it


def test_a_runs_unexpected_error_is_one_line_and_its_traceback_stays_in_train_log(workdir):
    (workdir / "R" / "histograms.csv").mkdir(parents=True)  # a run that cannot write its histograms fails
    proc = run_in_process("train", "epochs=1", "progress=false", "hydra.run.dir=R", cwd=workdir)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("normbench: error: run failed: IsADirectoryError") and "details in R/train.log" in line
    assert "Traceback" in (workdir / "R" / "train.log").read_text()
    assert json.loads((workdir / "R" / "summary.json").read_text())["status"] == "failed"
