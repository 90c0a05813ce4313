"""The outcomes that end a command other than by success: each carries what the command
line needs to say it in one line, and ``cli.EXIT_CODES`` maps each to its exit status."""

from __future__ import annotations

import errno
import os
import signal

# errno -> how a write that failed for want of a writable disk is said
DISK = {errno.ENOSPC: "no space left on", errno.EDQUOT: "disk quota exceeded on", errno.EROFS: "read-only file system"}


def device_of(path: str) -> str:
    """The file system ``path`` is on, as ``/dev/sda1 (/work)``: its mount point, and the
    device mounted there when /proc says."""
    where = os.path.abspath(path)
    while not os.path.ismount(where):
        where = os.path.dirname(where)
    try:
        with open("/proc/self/mounts") as f:
            sources = {fields[1]: fields[0] for fields in (line.split() for line in f) if len(fields) > 1}
    except OSError:
        sources = {}
    return f"{sources[where]} ({where})" if where in sources else where


def disk_problem(e: BaseException) -> str | None:
    """``no space left on /dev/sda1 (/work) writing <file>`` for a write refused by a full,
    over-quota or read-only disk; None for any other error."""
    if not isinstance(e, OSError) or e.errno not in DISK:
        return None
    if not e.filename:
        return f"{DISK[e.errno]} a device ({e.strerror})"
    return f"{DISK[e.errno]} {device_of(str(e.filename))} writing {e.filename}"


def first_line(e: BaseException) -> str:
    """The first line of ``e``'s message, or its type's name when it has none."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def described(e: BaseException) -> str:
    """``e`` in a few words: ``ValueError: <the first line of its message>`` (a full or
    read-only disk: ``no space left on <device> writing <file>``)."""
    disk = disk_problem(e)
    if disk is not None:
        return disk
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class UsageError(Exception):
    """Bad input: a config value, a combination of values, missing data, an unusable
    directory, or something in a run or sweep directory that normbench will not accept.
    Its message is one line naming the key, the value and what is allowed."""


class Ended(BaseException):
    """How a single run ended other than by returning (``error``: a UsageError, RunFailed,
    Interrupted or NothingToDo, or an error the preflight did not expect), on its way from
    inside Hydra to the command line. Hydra
    turns an Exception raised in a callback into a warning and goes on, and one raised by
    the task into an extra "Error executing job" line; a BaseException passes both, as
    SystemExit and KeyboardInterrupt do."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class RunFailed(Exception):
    """A run that started and then failed; its summary.json says ``failed`` and why."""


class Interrupted(Exception):
    """A run stopped by a signal (Ctrl-C, SIGTERM) after saving its checkpoint."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class NothingToDo(Exception):
    """Resuming a run that has already done all its epochs: said, and nothing changed."""


class SweepFailed(Exception):
    """A sweep in which a job failed or was interrupted, or which was itself stopped; its
    tally is printed already. ``signum`` is the signal that stopped the sweep, or 0."""

    def __init__(self, message: str, signum: int = 0):
        super().__init__(message)
        self.signum = signum
