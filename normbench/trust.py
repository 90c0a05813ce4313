"""A run or sweep directory is data, never code: what normbench accepts from one.

``resume=<dir>`` replays the overrides a run or sweep was started with, and ``evaluate``
and ``resume`` rebuild a model from a checkpoint's config. Someone may hand over a
directory made by someone else, so everything read from one is checked first:

- saved overrides may set only normbench's own keys and groups (``lr=0.1``,
  ``norm=gn``, ``norm.groups=4``): ``hydra.*`` keys, ``+``/``++``/``~`` edits, unknown keys
  and values with an interpolation (``${...}``, which could read the environment) are
  refused in one line, before Hydra sees any of them;
- a sweep's own Hydra overrides (its launcher, ...) are never replayed: they are given on
  the command line again, as the printed finish-it command does;
- ``data.download=true`` is never replayed: nothing read from a directory makes normbench
  download (give it on the command line yourself);
- a config read from a checkpoint may hold no interpolation (nothing is resolved from the
  environment), and checkpoints load tensors only (``checkpoint.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

from .config import AXES
from .errors import UsageError, described

GROUPS = (*AXES, "experiment")
NEVER_REPLAYED = {"data.download": "true"}  # key: value a directory may not set (normbench would download)


def known_keys() -> set[str]:
    """Every key a normbench override may set: the top-level keys, the groups, and
    ``<group>.<key>`` for the keys of every option of every axis table."""
    from .config import AXES, TrainConfig

    keys = {f.name for f in dataclasses.fields(TrainConfig)} | set(GROUPS)
    for group, table in AXES.items():
        for row in table.values():
            keys |= {f"{group}.{f.name}" for f in dataclasses.fields(row.schema)}
    return keys


def _refuse(source: str, override: str, why: str) -> UsageError:
    return UsageError(f"{source}: refused {override!r}: {why}; allowed: normbench's own settings (normbench train "
                      f"--help); a run or sweep directory is read as data, never as code")


def check_overrides(overrides: Iterable[Any], source: str, sweep: bool = False) -> list[str]:
    """The overrides read from ``source`` (a file in a run or sweep directory), each
    checked; those in NEVER_REPLAYED are dropped. Raises UsageError on the first refused."""
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
        if name not in known:
            raise _refuse(source, text[:80], f"{name} is not a normbench setting")
        if "${" in text:
            raise _refuse(source, text[:80], "its value is an interpolation, which would be resolved")
        if parsed.is_sweep_override() and not sweep:
            raise _refuse(source, text[:80], "a list of values where a run has one")
        if not parsed.is_sweep_override() and NEVER_REPLAYED.get(name) == parsed.get_value_element_as_str().lower():
            print(f"normbench: {source}: {text} is not replayed from a directory (nothing read from one makes "
                  f"normbench download); give it on the command line to download")
            continue
        kept.append(text)
    return kept


def read_overrides(path: Path, source: str) -> list:
    """The list of overrides in a YAML file of a run directory, or a one-line refusal."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
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

