"""Sweeps through the real command: parallel jobs, readable job directories, failures
recorded and tallied, Ctrl-C and kill -9 then resume=true, SLURM's path with submitit_local,
and the experiment presets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import HERE, normbench_command, run_cli, run_in_process
from normbench.sweep.grid import jobs as grid_jobs
from normbench.sweep.grid import parse
from normbench.sweep.job import start_job
from normbench.sweep.resources import gpu_slot, threads_for_job
from normbench.validate import check_config

RESULT_KEYS = ("status", "final_val_acc", "final_val_loss", "best_val_acc", "final_train_loss", "steps",
               "steps_to_target", "diverged_at_step")


def jobs(sweep_dir: Path) -> dict[str, dict]:
    return {d.name: json.loads((d / "summary.json").read_text())
            for d in sorted(sweep_dir.iterdir()) if (d / "summary.json").exists()}


def the_sweep(workdir: Path) -> Path:
    (record,) = (workdir / "outputs" / "multirun").rglob("multirun.yaml")
    return record.parent


def results(summaries: dict[str, dict]) -> dict[str, tuple]:
    return {name: tuple(s[k] for k in RESULT_KEYS) for name, s in summaries.items()}


@pytest.mark.slow
def test_a_parallel_sweep_names_each_job_by_what_varies(workdir):
    proc = run_cli("train", "-m", "norm=bn,none", "seed=0,1", "epochs=1", "progress=false", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    sweep = the_sweep(workdir)
    summaries = jobs(sweep)
    # epochs and progress are the same in every job: they do not name the directories
    assert sorted(summaries) == ["norm=bn,seed=0", "norm=bn,seed=1", "norm=none,seed=0", "norm=none,seed=1"]
    for name, s in summaries.items():
        norm, seed = name.split(",")
        assert s["status"] == "completed"
        assert (s["config"]["norm"]["name"], s["config"]["seed"]) == (norm.split("=")[1], int(seed.split("=")[1]))
        assert s["threads"] == 1  # as many jobs as cores: one torch thread each
        assert (sweep / name / "metrics.csv").exists() and list((sweep / name).glob("events.out.tfevents.*"))
    # Hydra's launcher lines (one job per core) go to the sweep's log, not the terminal
    assert "Joblib.Parallel(n_jobs=-1," in (sweep / "multirun.log").read_text()
    assert "Joblib" not in proc.stdout + proc.stderr and "HYDRA" not in proc.stdout + proc.stderr
    # the terminal: what will run before the workers start, then each job as it ends with where the sweep is
    out = proc.stdout.splitlines()
    assert re.match(r"4 jobs; \d+ at a time; starting the worker processes", out[0])
    ended = [line for line in out if line.startswith("completed norm=")]
    assert [re.search(r"; (\d)/4 done", line).group(1) for line in ended] == ["1", "2", "3", "4"]
    assert all(re.search(r"\(\d+\.\d s\); \d/4 done, ~\d+ (s|min) left$", line) for line in ended[:3])
    assert ended[3].endswith("; 4/4 done") and out.index(ended[3]) < out.index(next(x for x in out if
                                                                                    x.startswith("sweep: 4 completed")))
    # each job ran with the config the sweeper checked, numbered as Hydra numbers jobs
    ran = {name: OmegaConf.load(sweep / name / ".hydra" / "hydra.yaml").hydra.job for name in summaries}
    assert sorted(job.num for job in ran.values()) == [0, 1, 2, 3]
    assert all(job.id == f"{job.name}_{job.num}" for job in ran.values())
    lines = proc.stdout.splitlines()
    assert "sweep: 4 completed (4 jobs," in proc.stdout
    shown = sweep.relative_to(workdir)
    assert f"normbench report {shown}" in lines and f"tensorboard --logdir {shown}" in lines


@pytest.mark.slow
def test_failed_and_diverged_jobs_are_recorded_and_the_others_finish(workdir):
    # data=mnist has no files here: that job fails after it started; lr=50 diverges
    proc = run_cli("train", "-m", "data=digits,mnist", "lr=0.05,50", "epochs=2", "progress=false",
                   "hydra.launcher.n_jobs=2", cwd=workdir)
    assert proc.returncode == 1, proc.stderr
    sweep = the_sweep(workdir)
    status = {name: s["status"] for name, s in jobs(sweep).items()}
    assert status == {"data=digits,lr=0.05": "completed", "data=digits,lr=50": "diverged",
                      "data=mnist,lr=0.05": "failed", "data=mnist,lr=50": "failed"}
    assert "sweep: 1 completed, 1 diverged, 2 failed (4 jobs," in proc.stdout
    failed = [line for line in proc.stderr.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 2
    for line in failed:
        job = line.split(": ")[1]
        assert f"(log: {job}/train.log)" in line and "MNIST" in line
        assert (workdir / job / "train.log").exists()
    assert jobs(sweep)["data=digits,lr=50"]["diverged_at_step"] is not None


def processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == directory.resolve():
                found.append(int(proc.name))
        except OSError:  # ended meanwhile, or not ours to read
            pass
    return found


@pytest.mark.slow
def test_bad_input_in_any_job_stops_the_sweep_before_training(workdir):
    proc = _start(workdir, "dropout=0.1,1.5", "epochs=1")
    proc.wait(timeout=120)
    # the job server, started while Hydra composed, ends with the sweep process: nothing
    # goes on importing for seconds with the sweep's output open
    end = time.monotonic() + 1.0
    while processes_in(workdir) and time.monotonic() < end:
        time.sleep(0.05)
    assert processes_in(workdir) == []
    out, err = proc.communicate(timeout=5)
    assert proc.returncode == 2
    assert err.strip() == ("normbench: error: dropout=1.5 is not allowed; allowed: a finite number, "
                           "0 <= dropout < 1 (in the sweep job dropout=1.5 epochs=1)")
    assert not (workdir / "outputs").exists()


def _start(workdir: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen(normbench_command() + ["train", "-m", *args], cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _last_step(metrics: Path) -> int:
    lines = metrics.read_text().splitlines()
    try:
        return int(lines[-1].split(",")[0]) if len(lines) > 1 else -1
    except ValueError:  # a line being written
        return -1


def _wait_for_a_finished_and_a_training_job(workdir: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        summaries = list((workdir / "outputs").rglob("summary.json"))
        training = [m for m in (workdir / "outputs").rglob("metrics.csv")
                    if not (m.parent / "summary.json").exists() and 50 <= _last_step(m) <= 250]  # of 550
        if training and any(json.loads(p.read_text()).get("status") == "completed" for p in summaries):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no job finished")


GRID = ["norm=bn,none", "seed=0,1,2", "dropout=0.3", "epochs=25", "progress=false", "threads=1",
        "hydra.launcher.n_jobs=2"]


@pytest.fixture(scope="session")  # see conftest: built once, in one worker
def uninterrupted(tmp_path_factory) -> dict[str, tuple]:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    proc = run_cli("train", "-m", *GRID, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    return results(jobs(the_sweep(workdir)))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "kill", "kill -9"])
@pytest.mark.xdist_group("test_sweep:uninterrupted")
def test_a_stopped_sweep_resumed_ends_as_an_uninterrupted_one(workdir, uninterrupted, how):
    proc = _start(workdir, *GRID)
    _wait_for_a_finished_and_a_training_job(workdir, proc)
    if how == "kill":  # SIGTERM to the sweep process alone, which passes it on to its jobs
        os.kill(proc.pid, signal.SIGTERM)
    else:  # Ctrl-C and kill -9 of the process group
        os.killpg(proc.pid, signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    sweep = the_sweep(workdir)
    before = {name: s["status"] for name, s in jobs(sweep).items()}
    assert 1 <= list(before.values()).count("completed") < 6
    if how in ("ctrl-c", "kill"):
        assert proc.returncode == (130 if how == "ctrl-c" else 143), err
        assert "interrupted" in before.values()
        tally = next(line for line in out.splitlines() if line.startswith("sweep: "))
        assert "interrupted" in tally and "failed" not in tally
        assert f"finish it: normbench train -m {' '.join(GRID)} resume={sweep.relative_to(workdir)}" in out
    else:
        assert proc.returncode == -signal.SIGKILL

    again = run_cli("train", "-m", *GRID, "resume=true", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "sweep: 6 completed (6 jobs," in again.stdout
    for name, status in before.items():
        if status == "completed":  # skipped, not trained again
            assert f"completed earlier, skipped: {name}" in again.stdout
    assert results(jobs(sweep)) == uninterrupted
    if how in ("ctrl-c", "kill"):  # an interrupted job went on from its checkpoint
        resumed = [name for name, status in before.items() if status == "interrupted"
                   and "resumed from" in (sweep / name / "train.log").read_text()]
        assert resumed


def children(pid: int) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]


def job_processes(sweep_pid: int) -> list[int]:
    """The job processes of a local parallel sweep: joblib's (loky's) workers, children of
    the sweep process (beside loky's resource tracker)."""
    return [p for p in children(sweep_pid) if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]


@pytest.mark.slow
@pytest.mark.xdist_group("test_sweep:uninterrupted")
def test_a_job_process_killed_outright_does_not_stop_the_sweep(workdir, uninterrupted):
    # kill -9 of one job process takes joblib's whole pool down; the jobs without a result
    # run again in a new pool, continuing from their checkpoints
    proc = _start(workdir, *GRID)
    end = time.monotonic() + 180
    while not list((workdir / "outputs").rglob("checkpoint.pt")):
        assert time.monotonic() < end and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    workers = job_processes(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "normbench: a job process was killed outright, and with it every running job;" in err
    assert "sweep: 6 completed (6 jobs," in out
    sweep = the_sweep(workdir)
    assert results(jobs(sweep)) == uninterrupted
    assert any("resumed from" in (d / "train.log").read_text() for d in sweep.iterdir() if d.is_dir())


def test_resume_refuses_what_is_not_a_sweep(workdir):
    proc = run_in_process("train", "-m", "norm=bn,none", "resume=true", HERE[0], cwd=workdir)
    assert proc.returncode == 2
    assert proc.stderr.startswith("normbench: error: resume=true: no sweep under outputs/multirun was started with "
                                  "the overrides norm=bn,none;")
    (workdir / "empty").mkdir()
    proc = run_in_process("train", "-m", "norm=bn,none", "resume=empty", HERE[0], cwd=workdir)
    assert proc.returncode == 2 and "not a sweep directory: no multirun.yaml in it" in proc.stderr


@pytest.mark.slow
def test_submitit_local_runs_the_sweep_and_a_timed_out_job_resumes_when_requeued(workdir):
    # SLURM sends USR2 before a job's time limit; submitit's local executor does the same
    # (the test sends it once each job has its first checkpoint, not waiting for a real
    # timeout). The job stops after its step, saves its checkpoint and is requeued, and the
    # requeued job goes on from the checkpoint to the end.
    epochs = 80
    proc = _start(workdir, "hydra/launcher=submitit_local", "norm=bn", "seed=0,1", f"epochs={epochs}",
                  "probe_every=0", "progress=false", "threads=1")
    end = time.monotonic() + 180
    while len(list((workdir / "outputs").rglob("checkpoint.pt"))) < 2:
        assert time.monotonic() < end and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    found = subprocess.run(["pgrep", "-f", "submitit.core._submit"], capture_output=True, text=True).stdout.split()
    assert len(found) == 2, found  # the two jobs' processes
    for pid in found:
        os.kill(int(pid), signal.SIGUSR2)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "sweep: 2 completed (2 jobs," in out
    sweep = the_sweep(workdir)
    summaries = jobs(sweep)
    assert sorted(summaries) == ["seed=0", "seed=1"]
    assert all(s["status"] == "completed" and s["steps"] == epochs * 22 for s in summaries.values())
    for name in summaries:
        log = (sweep / name / "train.log").read_text()
        assert "SIGUSR2: stopping after this step" in log and "resumed from" in log
        steps = [int(line.split(",")[0]) for line in (sweep / name / "metrics.csv").read_text().splitlines()[1:]]
        assert steps == sorted(steps) and steps[-1] == epochs * 22  # one unbroken record across the requeue


PRESETS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.slow  # every combination composed by Hydra: about 30 s
@pytest.mark.parametrize("name", PRESETS)
def test_every_experiment_preset_defines_a_grid_of_valid_runs(name):
    from itertools import product

    from hydra import compose

    from conftest import make_cfg

    make_cfg()  # Hydra set up for this process
    cfg = compose(config_name="config", overrides=[f"experiment={name}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert len(params) >= 2 and str(cfg.hydra.sweep.dir).startswith(f"outputs/multirun/{name}/")
    grid = [[f"{k}={v}" for v in str(values).split(",")] for k, values in params.items()]
    assert len(list(product(*grid))) >= 6
    for combo in product(*grid):
        check_config(make_cfg(f"experiment={name}", *combo))
    assert PRESETS == ["batch_size", "bn_sigmoid", "dropout_shift", "init", "lr_stability", "placement",
                       "prenorm_postnorm", "resnet_cifar", "small_batch", "smoothness", "vgg_smoothness"]


def test_job_directories_and_the_keys_that_name_them():
    values = parse({"lr": "0.1,0.2"}, ["norm=bn,ln", "seed=range(2)", "epochs=5", "lr=0.3"])
    jobs, varying = grid_jobs(values)
    assert varying == ["norm", "seed"]  # the command line's lr=0.3 replaced the preset's two values
    assert [j.name for j in jobs] == ["norm=bn,seed=0", "norm=bn,seed=1", "norm=ln,seed=0", "norm=ln,seed=1"]
    assert jobs[0].overrides == ("lr=0.3", "norm=bn", "seed=0", "epochs=5")
    assert [j.name for j in grid_jobs(parse(None, ["epochs=5"]))[0]] == ["0"]  # nothing varies: its number
    # a value never makes a path, a quote or an interpolation, and two values never share a name
    names = [j.name for j in grid_jobs(parse(None, ["data.root=/x/y,'a b','${oc.env:HOME}',%2Fx%2Fy"]))[0]]
    assert names == ["data.root=%2Fx%2Fy", "data.root=%27a%20b%27", "data.root=%27%24%7Boc.env:HOME%7D%27",
                     "data.root=%252Fx%252Fy"]


def test_a_job_finds_what_an_earlier_attempt_left(tmp_path):
    def attempt(status=None, checkpoint=False):
        d = tmp_path / str(len(list(tmp_path.iterdir())))
        d.mkdir()
        if status:
            (d / "summary.json").write_text(json.dumps({"status": status, "config": {}}))
        if checkpoint:
            (d / "checkpoint.pt").write_bytes(b"x")
        (d / "metrics.csv").write_text("step\n")
        return d

    assert start_job(attempt("completed"), resume=True).skip.status == "completed"
    assert start_job(attempt("diverged", True), resume=True).skip.status == "diverged"
    d = attempt("interrupted", True)
    assert start_job(d, resume=True).resume_from == d
    d = attempt(None, True)  # killed: no summary, a checkpoint
    assert start_job(d, resume=False).resume_from == d
    for d in (attempt("failed", True), attempt("completed", False)):  # failed, or finished without resume
        start = start_job(d, resume=json.loads((d / "summary.json").read_text())["status"] == "failed")
        assert start.skip is None and start.resume_from is None
        assert not (d / "metrics.csv").exists() and not (d / "checkpoint.pt").exists()


def test_threads_per_job_share_the_cores():
    import joblib

    def hydra(target, **launcher):
        return OmegaConf.create({"launcher": {"_target_": target, **launcher}})

    cores = joblib.cpu_count()
    joblib_target = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert threads_for_job(None, hydra(joblib_target, n_jobs=-1)) == 1
    assert threads_for_job(None, hydra(joblib_target, n_jobs=1)) == cores
    assert threads_for_job(3, hydra(joblib_target, n_jobs=-1)) == 3
    assert threads_for_job(None, hydra("hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                                       cpus_per_task=4)) == 4


def test_gpu_slots_spread_jobs_and_cap_each_gpu(tmp_path):
    held = []
    with gpu_slot(tmp_path, 2, 2) as a, gpu_slot(tmp_path, 2, 2) as b, gpu_slot(tmp_path, 2, 2) as c, \
            gpu_slot(tmp_path, 2, 2) as d:
        held = [a, b, c, d]
        got = []
        waiter = threading.Thread(target=lambda: got.append(next(iter([_take(tmp_path)]))))
        waiter.start()
        time.sleep(0.5)
        assert not got  # all four slots taken: the fifth job waits
    waiter.join(5)
    assert held == [0, 1, 0, 1] and got == [0]


def _take(sweep_dir):
    with gpu_slot(sweep_dir, 2, 2, poll_s=0.05) as gpu:
        return gpu



@pytest.fixture(scope="session")  # see conftest: built once, in one worker
def norm_by_placement(tmp_path_factory):
    """A norm x placement sweep: norm=none is the same network at pre and post (its jobs one
    after another in this process)."""
    cwd = tmp_path_factory.mktemp("duplicates")
    proc = run_in_process("train", "-m", "norm=bn,none", "placement=pre,post", "seed=0,1", "epochs=1",
                          "progress=false", "hydra.sweep.dir=s", *HERE, cwd=cwd)
    return cwd, proc


@pytest.mark.slow
@pytest.mark.xdist_group("test_sweep:norm_by_placement")
def test_a_setting_that_cannot_change_the_network_is_trained_once_and_counted_once(norm_by_placement):
    cwd, proc = norm_by_placement
    assert proc.returncode == 0, proc.stderr
    assert "sweep: 6 completed, 2 duplicates (8 jobs," in proc.stdout
    # hydra.launcher.n_jobs=1: joblib runs the jobs in this process, and the sweep says so (no workers to wait for)
    assert proc.stdout.splitlines()[0] == ("8 jobs, 6 to run (2 repeating another: not trained); one after another "
                                           "in this process")
    for seed in (0, 1):
        assert (f"duplicate: norm=none,placement=post,seed={seed} is the same run as norm=none,placement=pre,"
                f"seed={seed}: not trained (placement=post has no effect with norm=none)") in proc.stdout
    assert sorted(p.name for p in (cwd / "s").iterdir() if p.is_dir()) == [
        "norm=bn,placement=post,seed=0", "norm=bn,placement=post,seed=1", "norm=bn,placement=pre,seed=0",
        "norm=bn,placement=pre,seed=1", "norm=none,placement=pre,seed=0", "norm=none,placement=pre,seed=1"]
    report = run_in_process("report", "s", "--baseline", "norm=none", "--no-pictures", cwd=cwd)
    assert report.returncode == 0, report.stderr
    import pandas as pd

    table = pd.read_csv(cwd / "s" / "report" / "summary.csv", keep_default_na=False).set_index("group")
    assert sorted(table.index) == ["norm=bn placement=post", "norm=bn placement=pre", "norm=none"]
    assert table.loc["norm=none", "completed"] == 2 and table.loc["norm=none", "placement"] == "n/a"
    by_norm = run_in_process("report", "s", "--by", "norm", "--out", "by_norm", "--no-pictures", cwd=cwd)
    assert by_norm.returncode == 0, by_norm.stderr
    assert pd.read_csv(cwd / "by_norm" / "summary.csv").set_index("group").loc["norm=none", "runs"] == 2


@pytest.mark.slow
@pytest.mark.xdist_group("test_sweep:norm_by_placement")
def test_the_hparams_tab_opens_on_what_the_sweep_varies(norm_by_placement):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cwd, proc = norm_by_placement
    assert proc.returncode == 0, proc.stderr
    sweep = EventAccumulator(str(cwd / "s"))
    sweep.Reload()
    content = sweep.PluginTagToContent("hparams")
    assert list(content) == ["_hparams_/experiment"]  # one experiment config, the sweep's
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    infos = {h.name: h for h in experiment.hparam_infos}
    # what varies, marked so (TensorBoard sorts by the mark and ticks the first five), then status
    assert [h.name for h in experiment.hparam_infos] == ["norm.name", "placement", "seed", "status"]
    assert [h.differs for h in experiment.hparam_infos] == [True, True, True, False]
    assert [v.string_value for v in infos["placement"].domain_discrete.values] == ["n/a", "post", "pre"]
    assert [v.number_value for v in infos["seed"].domain_discrete.values] == [0, 1]  # integers, discrete
    # a key only bn has (it changes only with the norm) and a constant one would take those places
    assert "norm.momentum" not in infos and "model.depth" not in infos
    assert {m.name.tag for m in experiment.metric_infos} >= {"val/acc", "summary/best_val_acc"}
    run = EventAccumulator(str(cwd / "s" / "norm=bn,placement=pre,seed=0"))
    run.Reload()
    assert "_hparams_/experiment" not in run.PluginTagToContent("hparams")  # each run: its session only
    start = plugin_data_pb2.HParamsPluginData.FromString(
        run.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["norm.name"].string_value == "bn" and start.hparams["seed"].number_value == 0


def test_progress_counts_each_job_once_whatever_the_order_they_end_in(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from normbench.sweep import progress

    assert progress.ended(tmp_path, "job0") == ""  # no plan (a run outside a sweep): nothing to say
    progress.start(tmp_path, 12)
    with ThreadPoolExecutor(6) as pool:  # jobs ending at once, each with the file open on its own
        said = list(pool.map(lambda i: progress.ended(tmp_path, f"job{i}"), range(12)))
    done = sorted(int(re.match(r"(\d+)/12 done", line).group(1)) for line in said)
    assert done == list(range(1, 13))
    assert sum(line == "12/12 done" for line in said) == 1
    assert all(re.fullmatch(r"\d+/12 done, ~\d+ s left", line) for line in said if line != "12/12 done")
    assert progress.ended(tmp_path, "job3") == "12/12 done"  # a job that says so twice is counted once
    assert [progress.duration(s) for s in (0.2, 40, 95, 5000, 9000)] == ["1 s", "40 s", "2 min", "83 min", "2.5 h"]
