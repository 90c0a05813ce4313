"""A run or sweep directory is data, never code; nothing is lost under misuse; every
failure is one line with its documented exit status (issue: hostile and careless input).

Each payload below would create a marker file if normbench ran what a directory says.
Through the command's entry function in this process (``run_in_process``; sweeps one job
at a time in it); a second writer beside a running one in a real process of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import HERE, copy_run, fifo, normbench_command, run_dirs, run_in_process
from normbench.rundir import CHECKPOINT

QUICK = ["epochs=1", "progress=false"]


def one_line(proc, code: int, *expected: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert lines and lines[-1].startswith("normbench: error: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for text in expected:
        assert text in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def trained(finished_run) -> Path:
    """A finished 3-epoch run (shared by the session: read, or copied to be changed)."""
    return finished_run


PAYLOADS = {  # (overrides added to a run's .hydra/overrides.yaml, what the refusal names)
    "a Hydra callback that opens a file": (["+hydra.callbacks.pwn._target_=builtins.open",
                                            "+hydra.callbacks.pwn.file={marker}", "+hydra.callbacks.pwn.mode=w"],
                                           "it adds or deletes a key"),
    "a Hydra key": (["hydra.run.dir={marker}"], "it sets Hydra itself"),
    "an unknown key": (["pwn={marker}"], "pwn is not a normbench setting"),
    "an interpolation": (["data.root=${{oc.env:HOME}}"], "interpolation"),
    "a deletion": (["~norm"], "it adds or deletes a key"),
    "not a list": ("{{a: 1}}", "not a list of overrides"),
    "not YAML": ("[unclosed", "not readable"),
}


@pytest.mark.parametrize("name", PAYLOADS)
def test_resume_refuses_a_run_directory_that_would_run_code(trained, tmp_path, name):
    run = copy_run(trained, tmp_path)
    marker = tmp_path / "payload-ran"
    payload, expected = PAYLOADS[name]
    file = run / ".hydra" / "overrides.yaml"
    if isinstance(payload, list):
        saved = yaml.safe_load(file.read_text()) + [p.format(marker=marker) for p in payload]
        file.write_text(yaml.safe_dump(saved))
    else:
        file.write_text(payload.format(marker=marker))
    before = (run / "summary.json").read_bytes()
    proc = run_in_process("train", f"resume={run}", "epochs=4", cwd=tmp_path)
    one_line(proc, 2, f"resume={run}", expected)
    assert not marker.exists() and (run / "summary.json").read_bytes() == before


@pytest.mark.slow  # trains
def test_a_sweep_directory_is_data_too(tmp_path):
    marker = tmp_path / "payload-ran"
    proc = run_in_process("train", "-m", "seed=0,1", *QUICK, "hydra.sweep.dir=sweep", *HERE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = tmp_path / "sweep" / "multirun.yaml"
    saved = yaml.safe_load(record.read_text())
    saved["hydra"]["overrides"]["task"] += ["+hydra.callbacks.pwn._target_=builtins.open",
                                            f"+hydra.callbacks.pwn.file={marker}", "+hydra.callbacks.pwn.mode=w"]
    record.write_text(yaml.safe_dump(saved))
    one_line(run_in_process("train", "-m", "resume=sweep", HERE[0], cwd=tmp_path), 2, "refused", "it adds or deletes a key")
    saved["hydra"]["overrides"]["task"] = ["seed=0,1", *QUICK]
    saved["hydra"]["overrides"]["hydra"] = ["+hydra.callbacks.pwn._target_=builtins.open"]
    record.write_text(yaml.safe_dump(saved))
    proc = run_in_process("train", "-m", "resume=sweep", HERE[0], cwd=tmp_path)  # Hydra settings are never replayed
    assert proc.returncode == 0 and "are not replayed" in proc.stdout and not marker.exists(), proc.stderr


def test_a_checkpoint_config_is_not_resolved_and_never_downloads(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    state = torch.load(run / CHECKPOINT, weights_only=True)
    state["config"]["data"]["standardize"] = "${oc.env:HOME}"
    torch.save(state, run / CHECKPOINT)
    one_line(run_in_process("evaluate", str(run), cwd=tmp_path), 2, "interpolation")
    state["config"]["data"] = {"name": "mnist", "root": str(tmp_path / "nothing"), "download": True,
                               "standardize": True, "val_fraction": 0.1, "split_seed": 0}
    torch.save(state, run / CHECKPOINT)
    one_line(run_in_process("evaluate", str(run), cwd=tmp_path), 2, "no readable MNIST files")  # not a download


@pytest.mark.slow  # trains
def test_non_finite_numbers_anywhere_still_give_a_summary(tmp_path):
    proc = run_in_process("train", "lr=30", "epochs=2", "threads=1", "progress=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = run_dirs(tmp_path)
    s = json.loads((run / "summary.json").read_text())  # strict JSON: NaN would not parse back as a number
    assert s["status"] == "diverged" and "NaN" not in (run / "summary.json").read_text()
    proc = run_in_process("train", "-m", "lr=1,30", "epochs=2", "progress=false", "hydra.sweep.dir=s", *HERE,
                          cwd=tmp_path)
    assert proc.returncode == 0 and "sweep: 1 completed, 1 diverged (2 jobs," in proc.stdout, proc.stderr


def test_a_sweep_that_never_ran_is_an_error(tmp_path):
    one_line(run_in_process("train", "-m", "lr=interval(0,1)", *QUICK, *HERE, cwd=tmp_path), 2, "lr=interval(0,1)",
             "runs grids of listed values")
    one_line(run_in_process("train", "-m", "seed=range(0)", *QUICK, *HERE, cwd=tmp_path), 2, "gives no value")
    (tmp_path / "a_file").write_text("")
    one_line(run_in_process("train", "-m", "seed=0,1", *QUICK, "hydra.sweep.dir=a_file", *HERE, cwd=tmp_path), 2,
             "exists and is not a directory")
    one_line(run_in_process("train", "-m", "seed=0,1", *QUICK, "hydra.sweep.dir=/proc/x", *HERE, cwd=tmp_path), 2,
             "cannot make this directory")
    one_line(run_in_process("train", "-m", "seed=0,1", *QUICK, "hydra.sweep.dir=", *HERE, cwd=tmp_path), 2,
             "would write into the working directory")
    one_line(run_in_process("train", "-m", "+dropuot=0.1,0.2", *QUICK, *HERE, cwd=tmp_path), 2,  # in every job
             "dropuot=0.1 is not a setting of normbench (did you mean dropout?)")
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow  # trains
def test_evaluate_takes_a_sweep_job_directory(tmp_path):
    assert run_in_process("train", "-m", "seed=0,1", *QUICK, "hydra.sweep.dir=s", *HERE, cwd=tmp_path).returncode == 0
    proc = run_in_process("evaluate", "s/seed=0", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((tmp_path / "s" / "seed=0" / "summary.json").read_text())
    assert json.loads(proc.stdout)["acc"] == s["final_val_acc"]
    proc = run_in_process("evaluate", "seed=1", "split=val", cwd=tmp_path / "s")
    assert proc.returncode == 0 and proc.stdout.startswith("val: loss"), proc.stderr


@pytest.mark.slow  # trains
def test_one_writer_per_run_directory(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for off in ([], ["resume=false"], ["resume=null"]):  # resume=false is no resume, not resume="false"
        one_line(run_in_process("train", "epochs=1", *off, f"hydra.run.dir={run}", cwd=tmp_path), 2,
                 "holds a run already", "resume=")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    first = subprocess.Popen(normbench_command() + ["train", "epochs=30", "progress=false", "hydra.run.dir=two"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (tmp_path / "two" / "metrics.csv").exists():
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = run_in_process("train", "epochs=1", "hydra.run.dir=two", cwd=tmp_path)  # another process than first
    first.communicate(timeout=300)
    assert first.returncode == 0
    one_line(second, 2, "another normbench", "is writing this run directory now")
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["steps"] == 30 * 22


@pytest.mark.slow  # trains
def test_a_sweep_runs_each_distinct_job_once_and_one_sweep_at_a_time(tmp_path):
    proc = run_in_process("train", "-m", "seed=0,0", *QUICK, "hydra.sweep.dir=s", *HERE, cwd=tmp_path)
    assert proc.returncode == 0 and "sweep: 1 completed, 1 duplicate (2 jobs," in proc.stdout, proc.stderr
    one_line(run_in_process("train", "-m", "seed=0,1", *QUICK, "hydra.sweep.dir=s", *HERE, cwd=tmp_path), 2,
             "holds a sweep already", "resume=true")


def test_threads_are_bounded_by_the_machine(tmp_path):
    one_line(run_in_process("train", "threads=100000", *QUICK, cwd=tmp_path), 2, "threads=100000 is not allowed",
             f"in [1, {4 * os.cpu_count()}]")


def test_a_failed_resume_keeps_the_finished_summary(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    state = torch.load(run / CHECKPOINT, weights_only=True)
    state["model"]["head.weight"] = torch.zeros(3, 3)  # a checkpoint that does not fit its model
    torch.save(state, run / CHECKPOINT)
    summary = (run / "summary.json").read_bytes()
    one_line(run_in_process("train", f"resume={run}", "epochs=4", cwd=tmp_path), 2, "does not fit the run")
    assert (run / "summary.json").read_bytes() == summary


@pytest.mark.slow  # trains
def test_a_run_killed_before_its_first_checkpoint_starts_over(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    for name in ("summary.json", CHECKPOINT):
        (run / name).unlink()
    proc = run_in_process("train", f"resume={run}", cwd=tmp_path)
    assert proc.returncode == 0 and "stopped before its first checkpoint" in proc.stdout, proc.stderr
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "completed" and s["steps"] == 66 and len(list(run.glob("events.out.tfevents.*"))) == 1


@pytest.mark.parametrize("args, expected", [
    (["resume="], "resume= is empty"),
    (["hydra.run.dir="], "would write into the working directory"),
    (["data=mnist", "data.root="], "data.root=''"),
    (["hydra.run.dir=a_file"], "exists and is not a directory"),
])
def test_empty_or_unusable_directories_are_refused(tmp_path, args, expected):
    (tmp_path / "a_file").write_text("")
    one_line(run_in_process("train", *args, *QUICK, cwd=tmp_path), 2, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize("args, expected", [
    (["device=tpu"], "device=tpu is not allowed; allowed: auto, cpu, cuda, cuda:N"),
    (["data.root="], "data.root= is empty"),
])
def test_evaluate_refuses_bad_options_in_one_line(trained, tmp_path, args, expected):
    one_line(run_in_process("evaluate", str(trained), *args, cwd=tmp_path), 2, expected)


def test_evaluate_refuses_a_checkpoint_whose_config_is_incomplete(trained, tmp_path):
    state = torch.load(trained / CHECKPOINT, weights_only=True)
    del state["config"]["model"]
    torch.save(state, tmp_path / "partial.pt")
    one_line(run_in_process("evaluate", "partial.pt", cwd=tmp_path), 2, "its config is not one normbench can build")


def test_a_saved_group_value_never_loads_a_file_from_anywhere(tmp_path):
    """The issue's reproduction: a saved experiment= that walks to a YAML beside the run,
    whose Hydra callback would make a directory."""
    (tmp_path / "s" / ".hydra").mkdir(parents=True)
    (tmp_path / "s" / ".hydra" / "overrides.yaml").write_text(
        "- epochs=1\n- experiment=../../../../../../../../../../proc/self/cwd/s/evil\n")
    (tmp_path / "s" / "evil.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    p:\n      _target_: os.makedirs\n      name: PWNED\n")
    proc = run_in_process("train", "resume=s", cwd=tmp_path)
    one_line(proc, 2, "resume=s: .hydra/overrides.yaml: refused 'experiment=../", "is not the name of an option")
    assert not (tmp_path / "PWNED").exists() and sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        ".hydra", "evil.yaml"]


LINKED = {  # (what in the run directory becomes a symlink to a file outside it, the command's own arguments)
    ".hydra/config.yaml": ["epochs=4", "lr=0.1"],  # written by Hydra even though the resume is then refused
    "train.log": ["epochs=4"],
    ".lock": ["epochs=4"],
    "metrics.csv": ["epochs=4"],  # dangling: it would be created
}


@pytest.mark.parametrize("name", LINKED)
def test_nothing_is_written_through_a_symlink_in_a_run_directory(trained, tmp_path, name):
    run = copy_run(trained, tmp_path)
    victim = tmp_path / "victim"
    if name != "metrics.csv":
        victim.write_text("not normbench's\n")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and not p.is_symlink()}
    one_line(run_in_process("train", f"resume={run}", "progress=false", *LINKED[name], cwd=tmp_path), 2,
             f"{name}: a symlink", "inside a run directory")
    assert (victim.read_text() == "not normbench's\n") if name != "metrics.csv" else not victim.exists()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and not p.is_symlink()} == before


def test_a_new_run_or_sweep_never_writes_through_a_symlink_in_its_directory(tmp_path):
    (tmp_path / "R").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "R" / ".hydra").symlink_to(tmp_path / "elsewhere")
    one_line(run_in_process("train", *QUICK, "hydra.run.dir=R", cwd=tmp_path), 2, "R/.hydra: a symlink")
    assert not any((tmp_path / "elsewhere").iterdir()) and [p.name for p in (tmp_path / "R").iterdir()] == [".hydra"]
    (tmp_path / "S" / "seed=1").mkdir(parents=True)  # a sweep's job folders are checked the same way
    (tmp_path / "S" / "seed=1" / "train.log").symlink_to(tmp_path / "victim")
    one_line(run_in_process("train", "-m", "seed=0,1", *QUICK, "hydra.sweep.dir=S", *HERE, cwd=tmp_path), 2,
             "S/seed=1/train.log: a symlink")
    assert not (tmp_path / "victim").exists() and sorted(p.name for p in (tmp_path / "S").iterdir()) == ["seed=1"]


@pytest.mark.slow  # trains
def test_a_refused_resume_leaves_the_run_as_it_was_and_resumable(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    one_line(run_in_process("train", f"resume={run}", "epochs=4", "lr=0.1", cwd=tmp_path), 2, "lr=0.1 differs")
    # .hydra/ included: its saved overrides must not now say lr=0.1 (every later resume would be refused)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    proc = run_in_process("train", f"resume={run}", "epochs=4", "progress=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "summary.json").read_text())["epochs_completed"] == 4


def test_a_fifo_or_an_expanding_yaml_in_a_run_directory_is_refused_at_once(trained, tmp_path):
    run = copy_run(trained, tmp_path)
    (run / "metrics.csv").unlink()
    fifo(run / "metrics.csv")  # resume waited on it for ever (and ignored the first SIGTERM)
    one_line(run_in_process("train", f"resume={run}", "epochs=4", cwd=tmp_path), 2, "metrics.csv: a FIFO")
    (run / "metrics.csv").unlink()
    shutil.copy(trained / "metrics.csv", run / "metrics.csv")
    laughs = ["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    laughs += [f"{x}: &{x} [*{y},*{y},*{y},*{y},*{y},*{y},*{y},*{y},*{y}]" for x, y in zip("bcdefghi", "abcdefgh")]
    (run / ".hydra" / "overrides.yaml").write_text("- {" + ", ".join(laughs) + "}\n")  # 43 s and 3.4 GB before
    one_line(run_in_process("train", f"resume={run}", cwd=tmp_path), 2, "anchors or aliases")
    sweep = tmp_path / "sweep"
    shutil.copytree(trained, sweep / "a", ignore=shutil.ignore_patterns(".lock"))
    shutil.copytree(trained, sweep / "b", ignore=shutil.ignore_patterns(".lock"))
    (sweep / "b" / "summary.json").unlink()
    fifo(sweep / "b" / "summary.json")  # report waited on it for ever
    proc = run_in_process("report", str(sweep), "--no-pictures", cwd=tmp_path)
    assert proc.returncode == 0 and "skipped sweep/b: unknown layout: summary.json is a FIFO" in proc.stderr
