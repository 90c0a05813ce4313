"""Hydra overrides as the command line gives them: ``key=value``, ``+key=value``, ``~key``."""

from __future__ import annotations

from typing import Iterable, Sequence


def key(override: str) -> str:
    """``norm`` of ``norm=bn``, ``model.depth`` of ``+model.depth=2``."""
    return override.split("=", 1)[0].lstrip("+~")


OFF = ("null", "false", "none")  # resume=<one of these>: no resume


def merge(saved: Iterable[str], args: Sequence[str]) -> list[str]:
    """A run's (or sweep's) saved overrides with the overrides in ``args`` replacing those
    of the same key; ``args``' other arguments (flags) first."""
    merged = {key(o): o for o in saved}
    rest = []
    for a in args:
        if "=" in a and not a.startswith("-"):
            merged[key(a)] = a
        else:
            rest.append(a)
    return [*rest, *merged.values()]


def quoted(value: object) -> str:
    """``value`` as one quoted Hydra override value, whatever it holds (a run directory
    named ``10-00-00_epochs=30,dropout=0.3`` holds ``=`` and ``,``, which Hydra would read
    as syntax): backslashes and quotes escaped, and ``${`` too (no interpolation)."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
    return f"'{text}'"
