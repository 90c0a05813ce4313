"""The grid of a sweep, from the overrides the sweeper parses once (as Hydra's example
sweeper does, with ``is_sweep_override()``): ``hydra.sweeper.params`` (a preset's grid),
then the command line's overrides, a key given again replacing it. Every combination of
the values of the keys given several values is a job; each job's directory is named by
those keys (``norm=bn,seed=0``), never by the keys every job shares, or by its number
when nothing varies."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hydra.core.override_parser.overrides_parser import OverridesParser

from ..errors import UsageError
from ..rundir import safe_name


@dataclass(frozen=True)
class Job:
    overrides: tuple[str, ...]  # the job's task overrides, as Hydra takes them
    name: str  # its directory under the sweep directory

    @property
    def launched_with(self) -> list[str]:
        """Its overrides and the one that puts it in its own directory (names are
        ``safe_name``s: no quote in them)."""
        return [*self.overrides, f"hydra.sweep.subdir='{self.name}'"]


def parse(params: dict | None, arguments: list[str], config_loader=None) -> dict[str, list[str]]:
    """key -> its values (``key=value`` strings), in the order the keys were first given.
    A sweep type this sweeper cannot run as a grid is refused in one line."""
    texts = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    parser = OverridesParser.create(config_loader=config_loader)
    values: dict[str, list[str]] = {}
    for text, override in zip(texts, parser.parse_overrides(texts), strict=True):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise UsageError(f"{text}: normbench's sweeper runs grids of listed values, not a "
                                 f"{override.value_type.name.lower().replace('_', ' ')}; allowed: comma-separated "
                                 f"values, range(...), choice(...)")
            values[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
            if not values[key]:
                raise UsageError(f"{text}: gives no value, so the sweep has no job; allowed: at least one value")
        else:
            values[key] = [f"{key}={override.get_value_element_as_str()}"]
    return values


def jobs(values: dict[str, list[str]]) -> tuple[list[Job], list[str]]:
    """Every combination (the first key varying slowest), and the keys that name them."""
    varying = [k for k, v in values.items() if len(v) > 1]
    out = []
    for i, combo in enumerate(itertools.product(*values.values())):
        named = [o for k, o in zip(values, combo, strict=True) if k in varying]
        out.append(Job(tuple(combo), safe_name(",".join(named)) if named else str(i)))
    return out, [k.lstrip("+~") for k in varying]
