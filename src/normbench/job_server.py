"""The fork server of a local parallel sweep, which its job processes are forked from.

The server imports this module before it forks any job process
(``sweep_job.start_job_server``), so each job process begins with torch, torch._dynamo
(which torch.optim's first step imports, about 2 s here), TensorBoard's writer and
normbench's run already loaded: those imports (about 4.5 s of CPU here) are paid once,
while the sweep checks its configs, instead of once in every job process. Nothing here
starts a thread or touches a device, so a fork of this process is as good as a fresh one.

Only the fork server imports this module: on Linux it first asks the kernel to end the
server with the sweep process, so a sweep refused for bad input does not leave a server
importing for seconds with the sweep's output pipes open.
"""

import os
import signal
import sys

if sys.platform.startswith("linux"):
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the sweep process ended before that took effect
        os._exit(0)

import torch
import torch._dynamo  # noqa: F401  (torch.optim's first step imports it)
import torch.optim  # noqa: F401
from torch.utils.tensorboard import SummaryWriter  # noqa: F401

from . import data, models, probes, run, rundir, sinks, sweep_job, trainer  # noqa: F401

__all__ = ["torch"]
