"""The wheel carries its configs: built from a copy of the source, installed into a new
virtual environment, run from a directory far from the source tree."""

import pytest
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

pytestmark = pytest.mark.slow  # end to end: the real command in a subprocess

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_installs_into_a_new_venv_and_runs_from_anywhere(tmp_path):
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for package in ("normbench", "hydra_plugins", "conf"):
        shutil.copytree(REPO / package, src / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("normbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for group, options in {"model": "mlp cnn", "norm": "bn ln in gn none",
                           "data": "digits blobs mnist fashion_mnist cifar10", "optim": "sgd adam"}.items():
        assert {f"normbench/conf/{group}/{o}.yaml" for o in options.split()} <= names
    assert "normbench/conf/config.yaml" in names and "normbench/conf/hydra/job_logging/normbench.yaml" in names
    assert {"normbench/sweep/sweeper.py", "hydra_plugins/normbench_sweeper/normbench_sweeper.py",
            "normbench/conf/hydra/sweeper/normbench.yaml"} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # torch and the other dependencies come from this environment (installing them again
    # would take minutes); normbench itself comes only from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import normbench; print(normbench.__file__)"],
                           capture_output=True, text=True, cwd=elsewhere, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv)
    proc = subprocess.run([str(venv / "bin" / "normbench"), "train", "epochs=1", "progress=false", "model=cnn"],
                          capture_output=True, text=True, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    (summary,) = elsewhere.glob("outputs/runs/*/*/summary.json")
    s = json.loads(summary.read_text())
    assert s["status"] == "completed" and s["config"]["model"]["name"] == "cnn"
    assert "normbench/report/command.py" in names
    proc = subprocess.run([str(venv / "bin" / "normbench"), "report", "outputs"], capture_output=True, text=True,
                          cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (elsewhere / "outputs" / "report" / "report.html").stat().st_size > 10_000
