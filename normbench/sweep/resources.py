"""A sweep job's share of the machine: how many jobs run at once on a local launcher
(``n_jobs``, Hydra's joblib launcher reads it through the ``normbench.n_jobs`` resolver),
torch threads per job, and a slot of a GPU when several jobs share GPUs."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional


def launcher_kind(hydra_cfg) -> str:
    """``local`` (joblib or Hydra's basic launcher, on this machine) or ``submitit``."""
    target = str(hydra_cfg.launcher.get("_target_", ""))
    return "submitit" if "submitit" in target else "local"


def threads_for_job(threads: Optional[int], hydra_cfg) -> Optional[int]:
    """Torch threads for a sweep job: ``threads`` when set; else in a joblib sweep the cores
    divided among the parallel jobs (1 thread with as many jobs as cores), in a submitit job
    its ``cpus_per_task``; None leaves torch's default."""
    if threads:
        return threads
    launcher = hydra_cfg.launcher
    target = str(launcher.get("_target_", "")).lower()
    if "joblib" in target:
        # joblib: only with the joblib launcher (the basic and submitit ones run without it)
        import joblib

        return max(1, joblib.cpu_count() // joblib.effective_n_jobs(launcher.get("n_jobs") or -1))
    if "submitit" in target:
        return launcher.get("cpus_per_task") or int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or None
    return None


def nvidia_gpu_present() -> bool:
    """Whether this machine may have a CUDA device, without importing torch (3 s here):
    NVIDIA's device files (Linux), unless CUDA_VISIBLE_DEVICES hides every GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def cuda_devices(device: str) -> int:
    """The CUDA devices a run with ``device`` may use: 0 for ``device=cpu`` or where no GPU
    can be (torch is asked only where one may be: a CPU machine's sweep starts its jobs
    without importing torch first)."""
    if device == "cpu" or not nvidia_gpu_present():
        return 0
    # torch: only when device asks for GPUs; the sweep's own process never loads torch
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def n_jobs(device: str, jobs_per_gpu: int) -> int:
    """Parallel jobs of a local sweep: with CUDA, ``jobs_per_gpu`` on each visible GPU;
    otherwise one per core (joblib's -1)."""
    gpus = cuda_devices(device)
    return gpus * jobs_per_gpu if gpus else -1


@contextmanager
def gpu_slot(sweep_dir: Path, n_gpus: int, jobs_per_gpu: int, poll_s: float = 0.2) -> Iterator[int]:
    """Hold one of ``n_gpus * jobs_per_gpu`` slots of the sweep for the job's lifetime and
    give its GPU index: the first jobs land on different GPUs, and no GPU holds more than
    ``jobs_per_gpu`` jobs at a time. Slots are file locks in ``<sweep>/.gpu-slots/``, released
    by the kernel when a job's process dies."""
    slots = sweep_dir / ".gpu-slots"
    slots.mkdir(parents=True, exist_ok=True)
    while True:
        for k in range(jobs_per_gpu):
            for gpu in range(n_gpus):
                f = open(slots / f"gpu{gpu}-{k}.lock", "a")
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.close()
                    continue
                try:
                    yield gpu
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
                    f.close()
                return
        time.sleep(poll_s)
