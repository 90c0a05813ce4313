"""A run or sweep directory is data, never code: what normbench accepts from one.

``resume=<dir>`` replays the overrides a run or sweep was started with, and ``evaluate``
and ``resume`` rebuild a model from a checkpoint's config. Someone may hand over a
directory made by someone else, so everything read from one is checked first:

- saved overrides may set only normbench's own keys and groups (``lr=0.1``,
  ``norm=gn``, ``norm.groups=4``): ``hydra.*`` keys, ``+``/``++``/``~`` edits, ``@package``
  moves, unknown keys and values with an interpolation (``${...}``, which could read the
  environment) are refused in one line, before Hydra sees any of them;
- nothing in a directory selects a file to load: a group's value (``norm=gn``,
  ``experiment=init``) must be a plain name (letters, digits, ``_``) of an option that
  exists on this command's config search path (normbench's ``conf/`` and any
  ``--config-dir`` given on the command line), never a path such as ``../../evil``;
- the files are read bounded and typed, YAML without anchors or aliases (``files.py``);
- a sweep's own Hydra overrides (its launcher, ...) are never replayed: they are given on
  the command line again, as the printed finish-it command does;
- ``data.download=true`` is never replayed: nothing read from a directory makes normbench
  download (give it on the command line yourself);
- a config read from a checkpoint may hold no interpolation (nothing is resolved from the
  environment), and checkpoints load tensors only (``checkpoint.py``).
"""

from __future__ import annotations

import dataclasses
import re
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from .config import AXES, TrainConfig
from .errors import UsageError, described
from .files import BadFile, load_yaml

GROUPS = (*AXES, "experiment")
NEVER_REPLAYED = {"data.download": "true"}  # key: value a directory may not set (normbench would download)
PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")  # a group's option as a directory may name it: no path, no ..


def known_keys() -> set[str]:
    """Every key a normbench override may set: the top-level keys, the groups, and
    ``<group>.<key>`` for the keys of every option of every axis table."""
    keys = {f.name for f in dataclasses.fields(TrainConfig)} | set(GROUPS)
    for group, table in AXES.items():
        for row in table.values():
            keys |= {f"{group}.{f.name}" for f in dataclasses.fields(row.schema)}
    return keys


def group_options(group: str, config_dirs: Sequence[Path] = ()) -> set[str]:
    """The options of ``group`` on the config search path: the YAML files in normbench's
    ``conf/<group>/`` (the package's resources) and in ``<dir>/<group>/`` of each config
    directory given on the command line."""
    folders = [files("normbench.conf").joinpath(group), *(Path(d).expanduser() / group for d in config_dirs)]
    found = set()
    for folder in folders:
        if folder.is_dir():
            found |= {entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml")}
    return found


def _option_names(parsed) -> list | None:
    """The option names a group override picks (one, or a sweep's list), or None when its
    value is not a plain list of names (a glob, a range, a mapping, ...)."""
    value = parsed.value()
    if not parsed.is_sweep_override():
        return [value]
    if parsed.is_choice_sweep() and not parsed.is_interval_sweep():
        return list(getattr(value, "list", [])) or None
    return None


def _check_group(parsed, text: str, source: str, config_dirs: Sequence[Path]) -> None:
    """A group's value read from a directory names an option on the search path."""
    names = _option_names(parsed)
    if names is None:
        raise _refuse(source, text[:80], "a group's value must list option names")
    options = group_options(parsed.key_or_group, config_dirs)
    for name in names:
        if name is None:  # experiment=null: no option, no file
            continue
        if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
            raise _refuse(source, text[:80], f"{str(name)[:60]!r} is not the name of an option of "
                                             f"{parsed.key_or_group} (a directory may not name a file to load)")
        if name not in options:
            raise _refuse(source, text[:80], f"{name} is not an option of {parsed.key_or_group} (options: "
                                             f"{', '.join(sorted(options))})")


def config_dirs(args: Sequence[str]) -> list[Path]:
    """The config directories given on the command line (``--config-dir DIR``, ``-cd DIR``,
    ``--config-path``/``-cp`` too, and their ``=DIR`` forms): saved group values may name
    the options there as well as normbench's own."""
    found = []
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in ("--config-dir", "-cd", "--config-path", "-cp"):
            if eq:
                found.append(Path(value))
            elif i + 1 < len(args):
                found.append(Path(args[i + 1]))
    return found


def _refuse(source: str, override: str, why: str) -> UsageError:
    return UsageError(f"{source}: refused {override!r}: {why}; allowed: normbench's own settings (normbench train "
                      f"--help); a run or sweep directory is read as data, never as code")


def check_overrides(overrides: Iterable[Any], source: str, sweep: bool = False,
                    config_dirs: Sequence[Path] = ()) -> list[str]:
    """The overrides read from ``source`` (a file in a run or sweep directory), each
    checked; those in NEVER_REPLAYED are dropped. Raises UsageError on the first refused.
    ``config_dirs``: the command line's config directories, whose options a group may name."""
    # hydra: only when overrides are checked; `normbench evaluate` reads a run without it
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    known = known_keys()
    kept = []
    for item in overrides:
        if not isinstance(item, str):
            raise _refuse(source, str(item)[:80], "not an override (key=value)")
        text = item.strip()
        try:
            (parsed,) = parser.parse_overrides([text])
        except Exception:
            raise _refuse(source, text[:80], "not an override Hydra can read") from None
        name = parsed.key_or_group
        if text.startswith(("+", "~")):
            raise _refuse(source, text[:80], "it adds or deletes a key")
        if name.split(".")[0].split("/")[0] == "hydra":
            raise _refuse(source, text[:80], "it sets Hydra itself")
        if parsed.package is not None:
            raise _refuse(source, text[:80], "it moves a config group (@package)")
        if name not in known:
            raise _refuse(source, text[:80], f"{name} is not a normbench setting")
        if "${" in text:
            raise _refuse(source, text[:80], "its value is an interpolation, which would be resolved")
        if name in GROUPS:
            _check_group(parsed, text, source, config_dirs)
        if parsed.is_sweep_override() and not sweep:
            raise _refuse(source, text[:80], "a list of values where a run has one")
        if not parsed.is_sweep_override() and NEVER_REPLAYED.get(name) == parsed.get_value_element_as_str().lower():
            print(f"normbench: {source}: {text} is not replayed from a directory (nothing read from one makes "
                  f"normbench download); give it on the command line to download")
            continue
        kept.append(text)
    return kept


def read_overrides(path: Path, source: str) -> list:
    """The list of overrides in a YAML file of a run directory, or a one-line refusal (the
    file bounded, typed and without anchors: ``files.load_yaml``)."""
    try:
        data = load_yaml(path, within=path.parent)
    except BadFile as e:
        raise UsageError(f"{source}: refused: {e}; allowed: the file normbench train wrote") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as e:
        raise UsageError(f"{source}: not readable ({described(e)}); allowed: the file normbench "
                         f"train wrote") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise UsageError(f"{source}: not a list of overrides; allowed: the file normbench train wrote")
    return data


def check_config(config: Any, source: str, where: str = "") -> None:
    """A config read from a file holds no interpolation anywhere (one would be resolved,
    reading the environment, when the config is used)."""
    if isinstance(config, dict):
        for k, v in config.items():
            check_config(v, source, f"{where}.{k}" if where else str(k))
    elif isinstance(config, (list, tuple)):
        for i, v in enumerate(config):
            check_config(v, source, f"{where}[{i}]")
    elif isinstance(config, str) and "${" in config:
        raise UsageError(f"{source}: refused its config: {where}={config[:80]!r} is an interpolation, which would "
                         f"be resolved; allowed: plain values (a run directory is read as data, never as code)")

