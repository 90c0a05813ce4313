"""Shared helpers: compose configs with Hydra's compose API, and run the real command."""

from __future__ import annotations

import copy
import functools
import io
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from normbench.app import register

# The suite runs on pytest-xdist's workers, one per core (pyproject's addopts: -n auto
# --dist loadgroup). A fixture is built in each worker that runs a test using it: the tests
# of an expensive shared one carry @pytest.mark.xdist_group("<module>:<fixture>"), which sends
# them all to one worker, and it is session-scoped (a worker may run other modules' tests
# between them, which would tear a module-scoped one down and build it again).
#
# Python's and pytest's caches as they are by default, whatever the machine's environment
# says: with PYTHONDONTWRITEBYTECODE=1 (set on some CI images) every worker would rewrite the
# test modules' asserts again at collection (~3 s) and every normbench process a test starts
# would compile normbench's modules again (~0.2 s each).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Under pytest-xdist each worker is one of the machine's cores: torch in each of them (and in
# every normbench process a test starts, through OMP_NUM_THREADS) on one thread, so that two
# workers on 2 cores do not each run 2 threads (the same tests took 40% more CPU time so).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ["OMP_NUM_THREADS"] = "1"
    # a test that asks for more threads (the golden rows: 2) waits for them without spinning
    # on the core the other worker needs
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(1)

FAST = ["epochs=2", "progress=false"]
# a sweep through run_in_process: joblib runs n_jobs=1 without worker processes, the jobs one
# after another in this process; each on one thread, as each job of a parallel sweep on 2 cores
HERE = ("hydra.launcher.n_jobs=1", "threads=1")


def make_cfg(*overrides: str):
    """The config ``normbench train <overrides>`` would run, composed by Hydra (initialised
    once per test process: setting Hydra up is most of a composition's time; and again
    after an in-process command cleared it), a copy of its own for each call (a test may
    change it)."""
    from hydra.core.global_hydra import GlobalHydra

    register()
    if not GlobalHydra.instance().is_initialized():
        initialize_config_module(config_module="normbench.conf", version_base="1.3")
    return copy.deepcopy(_composed(overrides))


@functools.lru_cache(maxsize=None)  # ~0.1 s a composition; a quarter of the fast tier's are repeats
def _composed(overrides: tuple[str, ...]):
    return compose(config_name="config", overrides=list(overrides))


def normbench_command() -> list[str]:
    script = Path(sys.executable).with_name("normbench")
    if script.exists():
        return [str(script)]
    found = shutil.which("normbench")
    assert found, "the normbench console script is not installed (pip install -e .)"
    return [found]


def run_cli(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``normbench`` command in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(normbench_command() + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def run_dirs(cwd: Path) -> list[Path]:
    """Every directory under cwd/outputs that holds a summary.json, oldest first."""
    return sorted(p.parent for p in (cwd / "outputs").rglob("summary.json"))


def fifo(path: Path) -> Path:
    """A FIFO at ``path`` that cannot hang a test: for 10 s a helper thread opens it for
    writing whenever a reader has it open, and closes it at once, so a reader that blocks
    (the bug such a test looks for) gets an empty file instead of waiting for ever."""
    import errno
    import threading
    import time

    os.mkfifo(path)

    def unblock():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as e:
                if e.errno not in (errno.ENXIO, errno.ENOENT):
                    return
            time.sleep(0.05)

    threading.Thread(target=unblock, daemon=True).start()
    return path


# what a run or a sweep changes in the process that calls normbench.cli.main: the handlers
# of these signals (signals.py, sweep/sweeper.py, sweep/job.py's Ctrl-C between jobs)
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE)


@contextmanager
def process_state_kept():
    """Everything ``normbench.cli.main`` may change in the process that calls it, put back
    afterwards, so that one in-process command never leaks into the next test: the working
    directory, the environment (HYDRA_FULL_ERROR, ...), ``sys.argv`` (Hydra reads its flags
    from it), Hydra's globals (GlobalHydra, HydraConfig), every logger's handlers, level and
    flags (Hydra's job_logging gives the root logger a console and a train.log handler: a
    leaked one would write the next test's lines into an old run's train.log), the signal
    handlers above, torch's thread count (threads=, a sweep job's share), its global RNG
    (a run seeds it) and cuDNN's benchmark flag (the trainer sets it on a GPU)."""
    import logging

    import torch
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    cwd, environ, argv = os.getcwd(), dict(os.environ), list(sys.argv)
    handlers = {s: signal.getsignal(s) for s in SIGNALS}
    loggers = [logging.getLogger()] + [x for x in logging.Logger.manager.loggerDict.values()
                                       if isinstance(x, logging.Logger)]
    kept = {x: (list(x.handlers), x.level, x.propagate, x.disabled) for x in loggers}
    threads, rng, benchmark = torch.get_num_threads(), torch.get_rng_state(), torch.backends.cudnn.benchmark
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
        for logger, (before, level, propagate, disabled) in kept.items():  # loggers made since: as made
            for handler in logger.handlers:
                if handler not in before:
                    handler.close()
            logger.handlers[:] = before
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled
        for s, handler in handlers.items():
            signal.signal(s, handler)
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)
        torch.backends.cudnn.benchmark = benchmark
        os.environ.clear()
        os.environ.update(environ)
        sys.argv[:] = argv
        os.chdir(cwd)


def run_in_process(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``normbench <args>`` through ``normbench.cli.main`` in this process, from ``cwd``: the
    command's own code path without starting an interpreter (3-6 s of imports each time).
    Returns what run_cli returns: the exit status (main()'s, or a SystemExit's, as the
    interpreter would exit with it), and what it wrote to stdout and stderr (sys.stdout and
    sys.stderr; Hydra's console log handler is made on the stream it finds, so its lines are
    caught too). Everything it changed in the process is put back (``process_state_kept``)."""
    from normbench.cli import main

    if {"-m", "--multirun"} & set(args):  # loky's workers would outlive the test, in its working directory
        assert HERE[0] in args, f"a sweep in this process runs its jobs here: add {HERE[0]}"
    out, err = io.StringIO(), io.StringIO()
    with process_state_kept():
        os.chdir(cwd)
        os.environ.pop("HYDRA_FULL_ERROR", None)
        os.environ.update(env or {})
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # Hydra's --help and --cfg end with sys.exit()
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return subprocess.CompletedProcess(["normbench", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def in_process(tmp_path: Path):
    """``normbench <args>`` in this process from ``tmp_path`` (``run_in_process``), so that a
    test can also inject a fault with monkeypatch (a full disk, ...)."""
    return lambda *args, cwd=None, env=None: run_in_process(*args, cwd=cwd or tmp_path, env=env)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished run, trained once per session through the command in this process: the
    digits MLP for 3 epochs (66 steps) with dropout=0.2 (so that eval mode differs from
    train mode). Tests read it, or change a copy of it (``copy_run``), never it."""
    cwd = tmp_path_factory.mktemp("finished")
    proc = run_in_process("train", "epochs=3", "dropout=0.2", "progress=false", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = run_dirs(cwd)
    return run_dir


def copy_run(run_dir: Path, where: Path) -> Path:
    """A copy of ``run_dir`` at ``where/run`` (without its lock), to change or resume."""
    copy = where / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy
