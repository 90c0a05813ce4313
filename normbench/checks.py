"""The shape of every refusal: one line naming the key, the value and what is allowed
(``dropout=1.5 is not allowed; allowed: a finite number, 0 <= dropout < 1``). The axis
tables and validate.py check values with these."""

from __future__ import annotations

import math
from typing import Any, NoReturn, Sequence

from .errors import UsageError


def option(value: Any) -> str:
    """The name of an option whether Hydra gives it as an Enum member (structured configs)
    or as a plain string (a config read from a file)."""
    return getattr(value, "value", value)


def show(value: Any) -> str:
    """A value as it would be typed: lists as ``[1,2]``."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return "[" + ",".join(show(v) for v in value) + "]"
    return str(value)


def fail(key: str, value: Any, allowed: str) -> NoReturn:
    raise UsageError(f"{key}={show(value)} is not allowed; allowed: {allowed}")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(key: str, value: Any, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False) -> None:
    """``value`` must be a finite number within [lo, hi] (bounds optional, open or closed)."""
    ok = is_number(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        left = "" if lo is None else f"{lo} {'<' if lo_open else '<='} "
        right = "" if hi is None else f" {'<' if hi_open else '<='} {hi}"
        fail(key, value, f"a finite number, {left}{key.split('.')[-1]}{right}")


def integer(key: str, value: Any, lo: int, hi: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        fail(key, value, f"an integer {'>= ' + str(lo) if hi is None else f'in [{lo}, {hi}]'}")


def per_feature(key: str, values: Sequence[float], n_features: int) -> None:
    if len(values) not in (1, n_features):
        fail(key, values, f"one value or one per feature (data.n_features={n_features})")
    for v in values:
        number(key, v)


SEED_MAX = 2**32 - 1
