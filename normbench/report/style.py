"""How the report's pictures encode groups and draw their axes.

- Colour encodes the norm when the groups differ by it (else the first grouping key), line
  style the next key; with another key (or more than four values of the second) the
  groups are split into panels, so no two groups share a colour and a style in one panel.
- A norm has one colour in every picture of every report, whatever the grouping and the
  results: ``NORM_COLORS``, keyed by the option's name (``bn_ghost`` is not ``bn``). Other
  keys' values take colours in their own sorted order, never in the table's (best first)
  order, so that the same values get the same colours in the next report.
- A setting a group's norm ignores (``n/a``) has a line style of its own, and the legend
  says it.
- Every axis gets tick labels inside its limits and a label naming its scale; log axes get
  plain labels (0.1, 0.2, 0.5) at 1-2-5 steps, or fewer per decade over a wide range.
- Text from a run (a group's label) is drawn literally: a ``$`` does not start mathtext.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..inapplicable import NOT_APPLICABLE

LINESTYLES = ["-", "--", ":", "-."]
# one colour per norm option (conf/norm/*.yaml), in every picture and every report
NORM_COLORS = {"bn": "tab:blue", "bn_ghost": "tab:cyan", "brn": "tab:purple", "ln": "tab:green", "rms": "tab:olive",
               "in": "tab:brown", "gn": "tab:orange", "gn_ws": "tab:pink", "wn": "tab:red", "none": "black"}
COLOR_KEY = "norm"
MAX_PANELS = 12  # panels a picture draws (the first in table order): each costs about 0.1 s


def pyplot():
    # matplotlib: only when pictures are drawn (not with --no-pictures)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # after choosing the backend that draws to files

    return plt


def literal(text: str) -> str:
    """``text`` as matplotlib should draw it: every ``$`` escaped, so it is never mathtext."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


@dataclass(frozen=True)
class GroupStyle:
    color: tuple
    linestyle: str
    panel: str  # "" when there is one panel


@dataclass(frozen=True)
class Styles:
    groups: dict[str, GroupStyle]
    color_key: str  # the key colour encodes ("" for one group)
    colors: dict[str, tuple]  # its value -> colour
    style_key: str  # the key line style encodes ("" when none)
    linestyles: dict[str, str]  # its value -> line style
    panels: list[str]  # panel titles in order ([""]: one panel)


def _sorted(values: list[str]) -> list[str]:
    """Values in their own order: numbers by value, text alphabetically; n/a last."""
    def key(v: str):
        try:
            return (0, float(v), "")
        except ValueError:
            return (1 + (v == NOT_APPLICABLE), 0.0, v)
    return sorted(values, key=key)


def palette(key: str, values: list[str]) -> dict[str, tuple]:
    """A colour for each value of the colour key: a norm's from NORM_COLORS (a norm option
    not in it, e.g. one of your own, takes a colour none of them uses); any other key's
    in its values' sorted order."""
    # matplotlib: only when pictures are drawn (not with --no-pictures)
    from matplotlib.colors import to_rgba

    plt = pyplot()
    if key == COLOR_KEY:
        used = {to_rgba(c) for c in NORM_COLORS.values()}
        spare = [c for c in plt.get_cmap("tab20").colors if to_rgba(c) not in used]
        unknown = _sorted([v for v in values if v not in NORM_COLORS])
        return {v: to_rgba(NORM_COLORS[v]) if v in NORM_COLORS else to_rgba(spare[unknown.index(v) % len(spare)])
                for v in values}
    ranked = _sorted(values)
    cmap = plt.get_cmap("tab10" if len(ranked) <= 10 else "tab20")
    return {v: cmap(ranked.index(v) % cmap.N) for v in values}


def styles(settings: dict[str, dict[str, str]], order: list[str]) -> Styles:
    """Colour, line style and panel of each group, from its settings ``{group: {key:
    value}}`` (the grouping keys in order), groups in table order."""
    keys = list(next(iter(settings.values()), {}))
    seen = {k: list(dict.fromkeys(settings[g][k] for g in order)) for k in keys}
    color_key = COLOR_KEY if COLOR_KEY in keys else keys[0] if keys else ""
    rest = [k for k in keys if k != color_key]
    style_key = rest[0] if rest and len(seen[rest[0]]) <= len(LINESTYLES) else ""
    panel_keys = [k for k in rest if k != style_key]
    colors = palette(color_key, seen[color_key]) if color_key else palette("", list(order))
    linestyles = {v: LINESTYLES[i] for i, v in enumerate(_sorted(seen.get(style_key, [])))}
    groups = {}
    for g in order:
        s = settings[g]
        color = colors[s[color_key]] if color_key else colors[g]
        panel = " ".join(f"{k}={s[k]}" for k in panel_keys if s[k] != NOT_APPLICABLE)
        groups[g] = GroupStyle(color, linestyles.get(s.get(style_key, ""), "-"), panel)
    panels = list(dict.fromkeys(groups[g].panel for g in order))
    return Styles(groups, color_key, colors if color_key else {}, style_key, linestyles, panels)


def legend(ax_or_fig, st: Styles, order: list[str], spread: set[str] = frozenset(), mean: str = "mean",
           **where) -> None:
    """One legend: a colour per value of the colour key (in table order) and a line style
    per value of the style key (``n/a``: a setting the norm ignores); with one key (or
    none), a line per group. ``spread``: how the groups' spread is drawn (``seeds``: a thin
    line per seed; ``band``: a shaded interval), each said once."""
    # matplotlib: only when pictures are drawn (not with --no-pictures)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if st.style_key:
        handles = [Line2D([], [], color=c, lw=2, label=literal(f"{st.color_key}={v}")) for v, c in st.colors.items()]
        handles += [Line2D([], [], color="0.3", ls=ls, lw=1.6, label=literal(
            f"{st.style_key}={v}" + (" (no effect with that norm)" if v == NOT_APPLICABLE else "")))
                    for v, ls in st.linestyles.items()]
    else:
        handles = [Line2D([], [], color=st.groups[g].color, ls=st.groups[g].linestyle, lw=2, label=literal(g))
                   for g in order]
    if spread:
        handles.append(Line2D([], [], color="0.3", lw=2.2, label=f"thick: {mean} over seeds"))
    if "seeds" in spread:
        handles.append(Line2D([], [], color="0.3", lw=0.8, alpha=0.45, label="thin: one seed"))
    if "band" in spread:
        handles.append(Patch(color="0.3", alpha=0.15, lw=0, label="shaded: 95% t-interval"))
    ax_or_fig.legend(handles=handles, fontsize="small", **where)



def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick positions for a log axis from ``lo`` to ``hi`` (both > 0): 1-2-5 per decade,
    fewer over wide ranges, and plain ones over a range narrower than a factor of 2."""
    if not (lo > 0 and hi > lo and math.isfinite(hi)):
        return [lo] if lo > 0 else []
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    candidates = []
    for subs, stride in (((1, 2, 5), 1), ((1, 2, 3, 5), 1), ((1, 3), 1), ((1,), 1), ((1,), 2), ((1,), 3), ((1,), 5),
                         ((1,), 10)):
        ticks = [m * 10.0**k for k in range(k0, k1 + 1) if (k - k0) % stride == 0 for m in subs]
        candidates.append([t for t in ticks if lo <= t <= hi])
    for least in (3, 2):  # the first set with at least three ticks (two will do) and at most nine
        for ticks in candidates:
            if least <= len(ticks) <= 9:
                return ticks
    # matplotlib: only when pictures are drawn (not with --no-pictures)
    from matplotlib.ticker import MaxNLocator

    return [t for t in MaxNLocator(4).tick_values(lo, hi) if lo <= t <= hi]


def log_axis(ax, which: str, lo: float, hi: float) -> None:
    """A log scale from ``lo`` to ``hi`` with plain tick labels (mathtext, 10^-1, costs
    most of a picture's drawing time) and no minor ticks."""
    # matplotlib: only when pictures are drawn (not with --no-pictures)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    (ax.set_ylim if which == "y" else ax.set_xlim)(lo, hi)
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def padded(lo: float, hi: float, log: bool, bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """Limits a little wider than [lo, hi] (a factor on a log axis), inside ``bounds``."""
    if log:
        lo, hi = lo / 1.25, hi * 1.25
    else:
        pad = max(0.05 * (hi - lo), 1e-3 * max(abs(lo), abs(hi), 1e-12))
        lo, hi = lo - pad, hi + pad
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return lo, hi


def finite_range(values) -> tuple[float, float] | None:
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    return (float(x.min()), float(x.max())) if len(x) else None


def save(fig, path) -> None:
    """Write the picture and free it (pictures are checked before this in the tests)."""
    fig.savefig(path)
    pyplot().close(fig)
