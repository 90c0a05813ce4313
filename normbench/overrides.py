"""Hydra overrides as the command line gives them: ``key=value``, ``+key=value``, ``~key``."""

from __future__ import annotations

from typing import Iterable, Sequence

from .errors import UsageError


def key(override: str) -> str:
    """``norm`` of ``norm=bn``, ``model.depth`` of ``+model.depth=2``."""
    return override.split("=", 1)[0].lstrip("+~")


OFF = ("null", "false", "none")  # resume=<one of these>: no resume


def is_override(arg: str) -> bool:
    """``key=value`` (with ``+``/``~``), not a flag such as ``--cfg=job``."""
    return "=" in arg and not arg.startswith("-")


def resume_value(args: Sequence[str], allowed: str) -> tuple[str | None, list[str]]:
    """The value of the last ``resume=`` in ``args`` (None when there is none or it is
    ``OFF``), and ``args`` without their ``resume=`` overrides. An empty value is refused."""
    given = [a for a in args if is_override(a) and key(a) == "resume"]
    rest = [a for a in args if a not in given]
    value = given[-1].split("=", 1)[1] if given else None
    if value is None or value.lower() in OFF:
        return None, rest
    if not value.strip():
        raise UsageError(f"resume= is empty; allowed: {allowed}")
    return value, rest


def merge(saved: Iterable[str], args: Sequence[str]) -> list[str]:
    """A run's (or sweep's) saved overrides with the overrides in ``args`` replacing those
    of the same key; ``args``' other arguments (flags) first."""
    merged = {key(o): o for o in saved}
    rest = []
    for a in args:
        if is_override(a):
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
