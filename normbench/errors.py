"""The outcomes that end a command other than by success: each carries what the command
line needs to say it in one line, and ``cli.EXIT_CODES`` maps each to its exit status."""

from __future__ import annotations

import signal


def first_line(e: BaseException) -> str:
    """The first line of ``e``'s message, or its type's name when it has none."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def described(e: BaseException) -> str:
    """``e`` in a few words: ``ValueError: <the first line of its message>``."""
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class UsageError(Exception):
    """Bad input: a config value, a combination of values, missing data, an unusable
    directory, or something in a run or sweep directory that normbench will not accept.
    Its message is one line naming the key, the value and what is allowed."""


class Ended(BaseException):
    """How a single run ended other than by returning (``error``: a UsageError, RunFailed,
    Interrupted or NothingToDo), on its way from inside Hydra to the command line. Hydra
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
