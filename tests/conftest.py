"""Shared helpers: compose configs with Hydra's compose API, and run the real command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from normbench.app import register

FAST = ["epochs=2", "progress=false"]


def make_cfg(*overrides: str):
    """The config ``normbench train <overrides>`` would run, composed by Hydra (initialised
    once per test process: setting Hydra up is most of a composition's time)."""
    from hydra.core.global_hydra import GlobalHydra

    register()
    if not GlobalHydra.instance().is_initialized():
        initialize_config_module(config_module="normbench.conf", version_base="1.3")
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


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch):
    """``normbench <args>`` through ``normbench.cli.main`` in this process, in ``tmp_path``,
    so that a test can inject a fault with monkeypatch (a full disk, ...). Hydra's global
    state and the root logger's handlers are put back afterwards."""
    import logging

    from hydra.core.global_hydra import GlobalHydra

    from normbench.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    GlobalHydra.instance().clear()
    yield lambda *args: main(list(args))
    GlobalHydra.instance().clear()
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d
