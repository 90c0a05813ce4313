"""The terminal is a view; the run's files are the result. Training, sweeps and reports
never fail because stdout or stderr is closed (``2>&-``, ``>&-``), piped into a reader that
exits (``| head -1``), gone (a closed terminal) or unable to encode a character (``±`` on
an ASCII terminal).

``guard()`` (the command line's first act, and each sweep job's) puts /dev/null where a
standard descriptor is closed, so nothing normbench opens takes its number, and wraps
``sys.stdout`` and ``sys.stderr`` in a ``View``: a character the terminal cannot encode is
written as an escape, and the first write that fails (a broken pipe, ...) silences that
stream for good (its descriptor then points at /dev/null, so nothing later fails on it,
buffered text included); the command goes on, records its result and exits with its own
status.
"""

from __future__ import annotations

import logging
import os
import sys


class View:
    """A text stream that never raises: after a write or flush fails, it drops what it is
    given. Everything else (``encoding``, ``buffer``, ...) is the wrapped stream's."""

    def __init__(self, stream, fd: int):
        self._stream, self._fd, self.broken = stream, fd, False

    def _silence(self) -> None:
        self.broken = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._fd)
            os.close(null)
        except OSError:
            pass

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
            except UnicodeEncodeError:
                encoding = getattr(self._stream, "encoding", None) or "ascii"
                self.write(text.encode(encoding, "backslashreplace").decode(encoding))
            except (OSError, ValueError):  # EPIPE, EIO, a full disk behind a redirection, a closed file
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._silence()

    def isatty(self) -> bool:
        try:
            return not self.broken and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._fd

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _fill_closed_descriptors() -> None:
    """/dev/null on each of descriptors 0, 1 and 2 that is closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def guard() -> None:
    """Make this process's stdout and stderr Views (idempotent)."""
    _fill_closed_descriptors()
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if isinstance(stream, View):
            continue
        if stream is None:  # closed when Python started: /dev/null now
            stream = open(fd, "w", closefd=False, errors="backslashreplace")
        else:
            try:
                stream.reconfigure(errors="backslashreplace")
            except (AttributeError, ValueError, OSError):
                pass
        setattr(sys, name, View(stream, fd))


def flush() -> None:
    """Flush both streams (a View says nothing if it cannot), before the process exits."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass


class OneLineRecords(logging.Filter):
    """The console handler's filter (conf/hydra/job_logging/normbench.yaml): records of
    several lines (a failure's traceback) go to the run's train.log only; the command line
    says the failure in one line, naming that file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None and "\n" not in record.getMessage().strip()
