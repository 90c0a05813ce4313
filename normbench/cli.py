"""The ``normbench`` command: a table of subcommands, and the one place that says what an
outcome means: it prints ``normbench: error: ...`` (one line) and picks the exit status.

    normbench train [overrides]     train one configuration (Hydra; -m sweeps a grid)
    normbench evaluate <run dir>    loss and accuracy of its checkpoint, in eval mode
    normbench report [PATH ...]     compare runs across seeds: tables, pictures, report.html
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from typing import Callable

from . import __version__, heap, streams
from .errors import (Ended, Interrupted, NothingToDo, RunFailed, SweepFailed, UsageError, described, disk_problem,
                     first_line)

# outcome -> exit status (the README's table); anything else a user typed that Hydra or
# OmegaConf refuses is bad input too (2)
EXIT_CODES: dict[type, Callable[[BaseException], int]] = {
    UsageError: lambda e: 2,
    RunFailed: lambda e: 1,
    SweepFailed: lambda e: 128 + e.signum if e.signum else 1,
    Interrupted: lambda e: 128 + e.signum,  # 130 after Ctrl-C, 143 after SIGTERM
    NothingToDo: lambda e: 0,
    KeyboardInterrupt: lambda e: 130,  # a second Ctrl-C
}


def exit_code(e: BaseException) -> int:
    for kind, code in EXIT_CODES.items():
        if isinstance(e, kind):
            return code(e)
    return 2  # a Hydra or OmegaConf error in what the user typed


def _train(args: list[str]) -> int:
    """``normbench train``: Hydra runs normbench's app. Hydra prints its own errors (several
    lines, exit 1) unless HYDRA_FULL_ERROR=1, under which it raises them: normbench sets
    it for the call, so that it can say each in one line with its own exit status."""
    # Hydra and OmegaConf: only for train (normbench --help and the other commands start without them)
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        if {"-m", "--multirun"} & set(args):
            from .sweep.resume import sweep_args  # a subcommand's code: only when it runs

            args = sweep_args(args)
        else:
            from .resume import run_args  # a subcommand's code: only when it runs

            args = run_args(args)
        from .app import register, task  # Hydra's app: only when train runs

        register()
        sys.argv = ["normbench train", *args]  # Hydra reads its flags and overrides from sys.argv
        user_asked = os.environ.get("HYDRA_FULL_ERROR") == "1"
        os.environ["HYDRA_FULL_ERROR"] = "1"
        try:
            task()
        except Ended as e:  # a single run's outcome, carried past Hydra (errors.Ended)
            raise e.error from None
        finally:
            if not user_asked:
                del os.environ["HYDRA_FULL_ERROR"]
        return 0
    except NothingToDo as e:
        print(f"normbench: {e}")
        return exit_code(e)
    except (Interrupted, KeyboardInterrupt, SweepFailed) as e:  # said already: a tally, a "stopping" line
        if isinstance(e, SweepFailed) and not e.signum:
            print(f"normbench: error: {e}", file=sys.stderr)
        return exit_code(e)
    except (UsageError, RunFailed, HydraException, OmegaConfBaseException) as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":  # the user asked for Hydra's full tracebacks
            raise
        print(f"normbench: error: {_one_line(e)}", file=sys.stderr)
        return exit_code(e)
    except Exception as e:  # a bug: one line here, the traceback in a file
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        return _unexpected(e)


def _unexpected(e: Exception) -> int:
    """An error normbench did not expect: one line, and where its traceback is kept; a
    full or read-only disk is no bug: ``no space left on <device> writing <file>``."""
    disk = disk_problem(e)
    if disk is not None:
        print(f"normbench: error: {disk}", file=sys.stderr)
        return 1
    try:
        with tempfile.NamedTemporaryFile("w", prefix="normbench-traceback-", suffix=".txt", delete=False) as f:
            traceback.print_exception(e, file=f)
        kept = f"its traceback: {f.name}"
    except OSError as not_kept:
        kept = f"its traceback could not be kept: {described(not_kept)}"
    print(f"normbench: error: unexpected {type(e).__name__}: {_one_line(e)} (a bug; {kept})", file=sys.stderr)
    return 1


def _one_line(e: BaseException) -> str:
    """Hydra's multi-line messages as one line: what failed, why, what is allowed."""
    from hydra.errors import MissingConfigException  # Hydra: only for train's errors

    if isinstance(e, MissingConfigException) and e.options:
        group = (e.missing_cfg_file or "").rpartition("/")[0]
        option = (e.missing_cfg_file or "").rpartition("/")[2]
        return f"{group}={option} is not an option of {group}; allowed: {', '.join(sorted(e.options))}"
    first = first_line(e).rstrip(".")
    if isinstance(e, (UsageError, RunFailed)):
        return first
    cause = e.__cause__ or e.__context__
    if cause is not None and str(cause).strip() and str(cause).strip().splitlines()[0] not in first:
        first += ": " + str(cause).strip().splitlines()[0]
    if "not in" in first or "Could not override" in first:
        first += " (normbench train --help lists the keys)"
    return first


def _refusing(run: Callable[[list[str]], int], args: list[str]) -> int:
    """Run a subcommand; its refusal (UsageError) is one line and its exit code, and so is
    anything it did not expect (its traceback kept in a file)."""
    try:
        return run(args)
    except UsageError as e:
        print(f"normbench: error: {e}", file=sys.stderr)
        return exit_code(e)
    except SystemExit as e:  # argparse's --help
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        return exit_code(KeyboardInterrupt())
    except Exception as e:  # a bug, or a full disk: one line here, the traceback in a file
        return _unexpected(e)


def _evaluate(args: list[str]) -> int:
    from .evaluate import main  # a subcommand's code: only when it runs

    return _refusing(main, args)


def _report(args: list[str]) -> int:
    from .report.command import run  # a subcommand's code (pandas, matplotlib): only when it runs

    return _refusing(run, args)


# name -> (what it does, how to run it with the remaining arguments)
COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "train": ("train one configuration, or sweep a grid with -m (Hydra overrides: key=value)", _train),
    "evaluate": ("loss and accuracy of a run's checkpoint on the validation (or test) split", _evaluate),
    "report": ("compare runs across seeds: t-intervals, Welch differences, Holm, pictures, report.html", _report),
}


def usage() -> str:
    lines = ["usage: normbench <command> [args]", "", "commands:"]
    lines += [f"  {name:<10} {what}" for name, (what, _) in COMMANDS.items()]
    lines += ["", "normbench <command> --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "--version":
        print(f"normbench {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"normbench: error: unknown command '{args[0]}'; allowed: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return command[1](args[1:])


def entry() -> None:
    """The ``normbench`` console script and ``python -m normbench``. The terminal is a view:
    a closed, broken or narrow stdout or stderr never changes what a command does or the
    status it exits with (``streams.py``)."""
    streams.guard()
    try:
        code = main()
    finally:
        streams.flush()
    heap.ending()  # everything written and closed: the shut-down's collections need not walk what is left
    sys.exit(code)


if __name__ == "__main__":
    entry()
