"""Finishing a sweep: ``normbench train -m <overrides> resume=true`` finds the newest sweep
under outputs/multirun started with the same overrides; ``resume=<sweep dir>`` takes that
sweep's own overrides (from its multirun.yaml, checked as data: ``trust.py``), then those
given. Either way the sweep runs again in its directory, where each job finds what its
earlier attempt left (``job.start_job``). A sweep's own Hydra settings (its launcher,
...) are not replayed from the directory: give them again, as the finish-it command does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from ..errors import UsageError
from ..files import BadFile, load_yaml
from ..overrides import is_override, key, merge, quoted, resume_value
from ..rundir import SWEEP_CONFIG, sweeps
from ..trust import check_overrides, config_dirs

HYDRA_SET_HERE = ("hydra.sweep.dir",)


def _is_hydra(arg: str) -> bool:
    return arg.lstrip("+~").startswith(("hydra.", "hydra/"))


def task_overrides(args: Sequence[str]) -> list[str]:
    return [a for a in args if is_override(a) and not _is_hydra(a)]


def _saved(sweep_dir: Path, source: str) -> tuple[list, list]:
    """(task overrides, Hydra overrides) of the sweep in ``sweep_dir``, as read (unchecked;
    the file bounded, typed and without anchors: ``files.load_yaml``)."""
    record = sweep_dir / SWEEP_CONFIG
    try:
        data = load_yaml(record, within=sweep_dir)
        saved = data["hydra"]["overrides"]
        task, hydra = list(saved.get("task") or []), list(saved.get("hydra") or [])
    except BadFile as e:
        raise UsageError(f"{source}: refused: {e}; allowed: the {SWEEP_CONFIG} normbench train -m wrote") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"{source}: not readable as Hydra's record of a sweep ({type(e).__name__}); allowed: the "
                         f"{SWEEP_CONFIG} normbench train -m wrote") from None
    return task, hydra


def find_sweep(args: Sequence[str], root: Path = Path("outputs/multirun")) -> Path:
    """The newest sweep under ``root`` started with these task overrides (resume aside)."""
    wanted = sorted(a for a in task_overrides(args) if key(a) != "resume")
    for sweep_dir in sweeps(root):
        try:
            task, _ = _saved(sweep_dir, str(sweep_dir))
        except UsageError:
            continue
        if sorted(str(a) for a in task if key(str(a)) != "resume") == wanted:
            return sweep_dir
    shown = " ".join(wanted) or "(no overrides)"
    raise UsageError(f"resume=true: no sweep under {root} was started with the overrides {shown}; allowed: "
                     f"the same overrides as the sweep to finish, or resume=<sweep directory>")


def sweep_args(args: list[str]) -> list[str]:
    """The Hydra arguments of ``normbench train -m <args>``: ``resume=true`` or
    ``resume=<sweep dir>`` pointed at the sweep to finish."""
    allowed = "true, or a sweep directory (outputs/multirun/...)"
    value, args = resume_value(args, allowed)
    if value is None:
        return args
    if value.lower() == "true":
        sweep_dir = next((Path(a.split("=", 1)[1]) for a in args if key(a) == "hydra.sweep.dir"), None)
        if sweep_dir is None:
            args.append(f"hydra.sweep.dir={quoted(find_sweep(args))}")
        elif not (sweep_dir / SWEEP_CONFIG).is_file():
            raise UsageError(f"resume=true: hydra.sweep.dir={sweep_dir} holds no sweep ({SWEEP_CONFIG}); "
                             f"allowed: the directory of an earlier sweep")
        return [*args, "resume=true"]
    sweep_dir = Path(value).expanduser()
    if not sweep_dir.is_dir():
        raise UsageError(f"resume={value}: no such directory; allowed: {allowed}")
    if not (sweep_dir / SWEEP_CONFIG).is_file():
        raise UsageError(f"resume={value}: not a sweep directory: no {SWEEP_CONFIG} in it; allowed: true, or a "
                         f"directory normbench train -m made (outputs/multirun/...)")
    source = f"resume={value}: {SWEEP_CONFIG}"
    task, hydra = _saved(sweep_dir, source)
    saved = [o for o in check_overrides(task, source, sweep=True, config_dirs=config_dirs(args))
             if key(o) != "resume"]
    unset = [str(o) for o in hydra if key(str(o)) not in HYDRA_SET_HERE and key(str(o)) not in map(key, args)]
    if unset:
        print(f"normbench: {source}: its Hydra settings ({' '.join(unset)[:200]}) are not replayed from the "
              f"directory; give them on the command line if the sweep needs them")
    return [*merge(saved, args), f"hydra.sweep.dir={quoted(sweep_dir.resolve())}", "resume=true"]
