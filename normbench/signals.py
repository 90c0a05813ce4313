"""Stopping a run gently: SIGINT (Ctrl-C) and SIGTERM (``kill``, SLURM's preemption) set
``Stop.signum``, and the training loop, which checks it after every step, ends there with
its checkpoint and metrics written. Under submitit its USR2 ("time is up") does the same,
and the run then hands the signal on to submitit's handler, which requeues the job. A
second signal acts as it would have without normbench."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

log = logging.getLogger("normbench")


@dataclass
class Stop:
    signum: int = 0  # the signal that asked the run to stop; 0 while none has


@contextmanager
def stop_on_signals() -> Iterator[tuple[Stop, dict]]:
    """A ``Stop`` that the signals set while inside, and the handlers from before (the
    caller hands submitit its USR2 after saving the checkpoint). Handlers can only be set
    in the main thread; elsewhere the signals keep their usual effect."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop, {}
        return
    signums = [signal.SIGINT, signal.SIGTERM]
    if callable(signal.getsignal(signal.SIGUSR2)):  # submitit's "time is up" signal: it requeues the job
        signums.append(signal.SIGUSR2)
    previous = {s: signal.getsignal(s) for s in signums}

    def on_signal(signum, _frame):
        stop.signum = signum
        for s in signums:  # a signal ignored before (in a sweep's job process) now stops the process
            signal.signal(s, signal.SIG_DFL if previous[s] == signal.SIG_IGN else previous[s])
        log.warning("%s: stopping after this step; a second one stops at once", signal.Signals(signum).name)
        print(f"\nnormbench: {signal.Signals(signum).name}: stopping after this step, saving the checkpoint",
              file=sys.stderr, flush=True)

    for s in signums:
        signal.signal(s, on_signal)
    try:
        yield stop, previous
    finally:
        for s in signums:
            signal.signal(s, previous[s])


def hand_on(stop: Stop, previous: dict) -> None:
    """After a run stopped for submitit's USR2 has saved its checkpoint: call submitit's
    own handler, which requeues the job (the requeued job continues from the checkpoint)."""
    handler = previous.get(stop.signum)
    if stop.signum == signal.SIGUSR2 and callable(handler):
        handler(stop.signum, None)
