"""The ``normbench`` command: a table of subcommands.

    normbench train [overrides]     train one configuration (Hydra; -m sweeps a grid)
    normbench evaluate <run dir>    loss and accuracy of its checkpoint, in eval mode
    normbench report [PATH ...]     compare runs across seeds: tables, pictures, report.html
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from . import __version__


def _resume_args(args: list[str]) -> list[str]:
    """``normbench train resume=<run dir> [overrides]``: the run's own overrides (from its
    .hydra/overrides.yaml), then those given, and Hydra's run directory set to the run's,
    so the run goes on in its own directory with its own settings."""
    given = [a for a in args if a.startswith("resume=")]
    if not given or {"-m", "--multirun"} & set(args):
        return args
    from .errors import UsageError

    value = given[-1].split("=", 1)[1]
    run_dir = Path(value).expanduser()
    if not run_dir.is_dir():
        raise UsageError(f"resume={value}: no such directory; allowed: a run directory (outputs/runs/<date>/<time>)")
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        raise UsageError(f"resume={value}: not a run directory: no .hydra/overrides.yaml in it; allowed: a "
                         f"directory normbench train made")
    import yaml

    from .overrides import key, merge

    saved = [o for o in (yaml.safe_load(overrides.read_text()) or []) if key(o) != "resume"]
    given = [a for a in args if key(a) != "resume"]
    return [*merge(saved, given), f"resume={run_dir.resolve()}", f"hydra.run.dir={run_dir.resolve()}"]


def _train(args: list[str]) -> int:
    from .errors import UsageError

    sweeping = bool({"-m", "--multirun"} & set(args))
    try:
        if sweeping:
            from .sweep_job import runs_jobs_in_parallel_here, start_job_server

            if runs_jobs_in_parallel_here(args):
                start_job_server()  # it imports what the jobs need while Hydra starts
            from .sweep import sweep_args

            args = sweep_args(args)
        else:
            args = _resume_args(args)
    except UsageError as e:
        print(f"normbench: error: {e}", file=sys.stderr)
        return e.exit_code
    from . import sweep
    from .run import hydra_main

    sys.argv = ["normbench train", *args]  # Hydra reads its flags and overrides from sys.argv
    sweep.LAST = None
    if os.environ.get("HYDRA_FULL_ERROR") == "1":  # the user asked for Hydra's full tracebacks
        hydra_main()
        return sweep.LAST.exit_code if sweep.LAST else 0
    # With HYDRA_FULL_ERROR set, Hydra raises its errors instead of printing several lines
    # each; normbench prints them as one line of its own.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
        # a sweep: 0 when every job completed or diverged (a result), else 1 (128 + the
        # signal when the sweep itself was stopped)
        return sweep.LAST.exit_code if sweep.LAST else 0
    except KeyboardInterrupt:
        return sweep.LAST.exit_code if sweep.LAST else 130
    except Exception as e:
        from .errors import RunFailed, UsageError

        if isinstance(e, RunFailed):
            print(f"normbench: error: {e}", file=sys.stderr)
            return e.exit_code
        if sweep.LAST is not None:  # the sweep stopped early; its tally is printed
            if not sweep.LAST.stopped_by:  # stopped by the user: no error of its own
                print(f"normbench: error: {_one_line(e)}", file=sys.stderr)
            return sweep.LAST.exit_code
        if not isinstance(e, UsageError) and not _is_config_error(e):
            raise
        print(f"normbench: error: {_one_line(e)}", file=sys.stderr)
        return 2
    finally:
        del os.environ["HYDRA_FULL_ERROR"]
    return 0


def _is_config_error(e: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(e, (HydraException, OmegaConfBaseException))


def _one_line(e: BaseException) -> str:
    """Hydra's multi-line messages as one line: what failed, why, what is allowed."""
    from hydra.errors import MissingConfigException

    if isinstance(e, MissingConfigException) and e.options:
        group = (e.missing_cfg_file or "").rpartition("/")[0]
        option = (e.missing_cfg_file or "").rpartition("/")[2]
        return f"{group}={option} is not an option of {group}; allowed: {', '.join(sorted(e.options))}"
    first = str(e).strip().splitlines()[0].rstrip(".")
    cause = e.__cause__ or e.__context__
    if cause is not None and str(cause).strip() and str(cause).strip().splitlines()[0] not in first:
        first += ": " + str(cause).strip().splitlines()[0]
    if "not in" in first or "Could not override" in first:
        first += " (normbench train --help lists the keys)"
    return first


def _refusing(run: Callable[[list[str]], int], args: list[str]) -> int:
    """Run a subcommand; its refusal (UsageError) is one line and its exit code."""
    from .errors import UsageError

    try:
        return run(args)
    except UsageError as e:
        print(f"normbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except SystemExit as e:  # argparse's --help
        return e.code if isinstance(e.code, int) else 0


def _evaluate(args: list[str]) -> int:
    from .evaluate import main

    return _refusing(main, args)


def _report(args: list[str]) -> int:
    from .report.command import run

    return _refusing(run, args)


# name -> (what it does, how to run it with the remaining arguments)
COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "train": ("train one configuration, or sweep a grid with -m (Hydra overrides: key=value)", _train),
    "evaluate": ("loss and accuracy of a run's checkpoint on the validation (or test) split", _evaluate),
    "report": ("compare runs across seeds: a table with bootstrap intervals, pictures, report.html", _report),
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
    """The ``normbench`` command (console script and ``python -m normbench``): ``main()``,
    then a quick exit. Tearing down an interpreter that has imported torch (and
    torch._dynamo, which torch.optim imports) takes about 1 s on 2 cores, for nothing:
    every file of the run is closed by then. So when only the main thread is left, the
    output is flushed, the atexit handlers run (logging's among them), and the process
    ends with ``os._exit``, skipping only the module teardown."""
    import atexit
    import threading

    try:
        code = main()
    except SystemExit as e:
        code = e.code
    except BrokenPipeError:  # the reader went away (normbench ... | head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, as a shell reports it
    if not (code is None or isinstance(code, int)) or threading.active_count() > 1 \
            or not hasattr(atexit, "_run_exitfuncs"):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    entry()
