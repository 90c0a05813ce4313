"""What CPython's cycle collector walks, and when it need not.

A run imports torch, Hydra and TensorBoard, and torch's optimizers import torch._dynamo and
sympy at their first construction: some 350,000 objects that live until the process ends.
The cycle collector walks every tracked object at each full collection, and there are
several of them while those objects are made (each time the heap has grown by a quarter)
and again as the interpreter shuts down: about 1 s of a one-epoch run on 2 cores, 0.8 s
of it at exit (docs/benchmarks.md, "Lighter, round three"). ``gc.freeze()``, Python's
public API for long-lived objects, moves what exists into a permanent generation that no
collection walks; what is made afterwards is collected as always.

- ``settled()``: around the first run of a process (``run.train``). Its imports are done,
  so the import-time objects leave the walks; on exit ``gc.unfreeze()`` gives them back.
  A later run in the same process (a sweep's worker reuses its process for the next job)
  freezes nothing: it would freeze what the run before left in reference cycles, its model
  and optimizer state maybe on the GPU, for as long as it trains.
- ``ending()``: the process ends next, in the processes normbench owns: ``cli.entry``,
  after every file normbench wrote is closed, and a sweep's job process at its exit
  (``at_exit()``, through ``atexit``: a worker ends without ``cli.entry``, and the sweep
  waits for its workers to end). Nothing is skipped: atexit handlers, logging's shut-down
  and the flushing of stdout and stderr run as before; only the shut-down's collections no
  longer walk what is left (an object still alive at exit has no promise of finalization
  in Python). A program that calls ``run.train`` itself keeps its own shut-down.

Freezing also keeps whatever cyclic garbage exists at that moment until the run ends
(``gc.collect()`` found none at the start of a single run).
"""

from __future__ import annotations

import atexit
import functools
import gc
from contextlib import contextmanager
from typing import Iterator


_first_run = True


@contextmanager
def settled() -> Iterator[None]:
    """Within the first run of a process: what exists on entry is left out of the cycle
    collector's walks."""
    global _first_run
    if not _first_run:
        yield
        return
    _first_run = False
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def ending() -> None:
    """The process exits next: the interpreter's shut-down need not walk what is left."""
    gc.freeze()


@functools.cache  # once a process
def at_exit() -> None:
    """``ending()`` when this process exits (a sweep's job process)."""
    atexit.register(ending)
