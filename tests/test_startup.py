"""Start-up: what a run does not need is not imported (a behaviour test, no timing).
Importing scikit-learn, pandas, matplotlib, torchvision or TensorBoard costs seconds on a
small machine; each is imported only by the code path that uses it."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # end to end: the real command in a subprocess

HEAVY = ("torch", "torchvision", "pandas", "matplotlib", "sklearn", "scipy", "tensorboard")


def loaded_after(code: str, cwd, watched=HEAVY) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {tuple(watched)!r} if m in sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_command_and_its_hydra_task_import_no_heavy_package(tmp_path):
    # what `normbench --help` and `normbench train --help` load: not even torch
    assert loaded_after("import normbench.cli, normbench.app, normbench.run, normbench.preflight, "
                        "normbench.validate", tmp_path) == []


@pytest.mark.parametrize("data", ["digits", "blobs"])
def test_a_run_imports_torch_and_tensorboard_only(tmp_path, data):
    code = ("import sys\nfrom normbench.cli import main\n"
            f"assert main(['train', 'epochs=1', 'progress=false', 'data={data}']) == 0")
    assert loaded_after(code, tmp_path) == ["tensorboard", "torch"]


SWEEP = ("normbench.sweep", "normbench.sweep.sweeper", "normbench.sweep.job", "joblib", "cloudpickle", "submitit",
         "hydra_plugins.hydra_joblib_launcher._core")


def test_a_single_run_imports_nothing_of_the_sweep_machinery(tmp_path):
    code = "from normbench.cli import main\nassert main(['train', 'epochs=1', 'progress=false']) == 0"
    assert loaded_after(code, tmp_path, SWEEP) == []


def test_a_parallel_sweeps_own_process_never_imports_torch(tmp_path):
    # each job's summary comes back to it pickled: a torch type in it (torch's version string
    # is one) made it import torch mid-sweep, 1.5 s of CPU taken from the jobs on 2 cores
    code = ("from normbench.cli import main\nassert main(['train', '-m', 'seed=0,1', 'epochs=1', 'progress=false', "
            "'hydra.launcher.n_jobs=2']) == 0")
    assert loaded_after(code, tmp_path, ("torch", "tensorboard")) == ["tensorboard"]  # its experiment's HParams
