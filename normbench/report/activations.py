"""The activation picture: what one block's norm layer does to the values passing through
it, at each group's last probe (the end of training), from histograms.csv."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .plots import MAX_ACTIVATION_GROUPS, Picture
from .style import literal, log_axis, pyplot, save

WHERE = (("pre_norm", "tab:orange", "before"), ("post_norm", "tab:blue", "after"))


def _edges_counts(d: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    d = d.sort_values("left", kind="stable")
    return np.append(d["left"].to_numpy(dtype=float), d["right"].to_numpy(dtype=float)[-1]), \
        d["count"].to_numpy(dtype=float)


def _central(edges: np.ndarray, counts: np.ndarray, tail: float = 0.001) -> tuple[float, float]:
    """Where a histogram's middle 1 - 2 * ``tail`` of its mass lies (bin edges)."""
    cum = np.cumsum(counts) / max(counts.sum(), 1)
    first = int(np.searchsorted(cum, tail, side="right"))
    last = int(np.searchsorted(cum, 1 - tail, side="left"))
    return float(edges[min(first, len(counts) - 1)]), float(edges[min(last, len(counts) - 1) + 1])


def log_binned(edges: np.ndarray) -> bool:
    """Whether a histogram was binned on a log scale (probes.log_histograms: a first bin
    from 0 for the zeros, then bins of equal ratio). Runs from before it: equal widths."""
    inner = edges[1:]
    if edges[0] != 0 or len(inner) < 3 or inner[0] <= 0:
        return False
    ratios = inner[1:] / inner[:-1]
    return bool(np.allclose(ratios, ratios[0], rtol=1e-3) and ratios[0] > 1 + 1e-6) or bool(np.all(ratios == 1))


def rebin(edges: np.ndarray, counts: np.ndarray, target: np.ndarray, log: bool) -> np.ndarray:
    """``counts`` in the bins ``edges`` moved onto the bins ``target``, each bin's count split
    in proportion to its overlap with each target bin, measured on the scale the bins were
    made on (``log``); a bin of no width goes whole into the bin holding it."""
    scale = np.log if log else np.asarray
    e, t = scale(edges), scale(target)
    out = np.zeros(len(target) - 1)
    for lo, hi, c in zip(e[:-1], e[1:], counts, strict=True):
        if c == 0:
            continue
        if hi <= lo:
            out[int(np.clip(np.searchsorted(t, lo, side="right") - 1, 0, len(out) - 1))] += c
            continue
        out += c * np.clip(np.minimum(hi, t[1:]) - np.maximum(lo, t[:-1]), 0, None) / (hi - lo)
    return out


@dataclass(frozen=True)
class Ranges:
    """What every group's panels share: the x range of the values, and the bins (and scale)
    of the per-feature variances."""
    values: tuple[float, float] | None
    variance_bins: np.ndarray | None
    log: bool


def shared(hists: dict[str, tuple[str, pd.DataFrame]], block: str) -> Ranges:
    """The x range of the values (the middle 99.8% of every group's histograms) and 40 bins
    of the per-feature variances over every group's: equal on a log scale when every
    variance histogram was binned on one (the positive values), else equal widths."""
    spans, var = [], []
    for _, h in hists.values():
        for where, _, _ in WHERE:
            d = h[h["tag"] == f"act/{block}/{where}"]
            if not d.empty:
                spans.append(_central(*_edges_counts(d)))
            d = h[h["tag"] == f"act/{block}/{where}/feature_var"]
            if not d.empty:
                var.append(_edges_counts(d))
    values = (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None
    if not var:
        return Ranges(values, None, False)
    log = all(log_binned(e) for e, _ in var)
    spans = [_occupied(e[1:], c[1:]) if log else _occupied(e, c) for e, c in var]  # log: the first bin holds zeros
    spans = [x for x in spans if x is not None]
    if not spans:
        return Ranges(values, None, log)
    lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
    if log:
        lo, hi = (lo / 1.2, hi * 1.2) if hi > lo else (lo / 2, hi * 2)
        return Ranges(values, np.geomspace(lo, hi, 41), True)
    pad = max(0.02 * (hi - lo), 1e-12)
    return Ranges(values, np.linspace(lo - pad, hi + pad, 41), False)


def _occupied(edges: np.ndarray, counts: np.ndarray) -> tuple[float, float] | None:
    """From the left edge of a histogram's first non-empty bin to the right edge of its last."""
    full = np.nonzero(counts)[0]
    return (float(edges[full[0]]), float(edges[full[-1] + 1])) if len(full) else None


def _values(ax, h: pd.DataFrame, block: str, span: tuple[float, float] | None) -> set[int]:
    """Density histograms of the values entering and leaving the norm, on one axis."""
    steps = set()
    for where, color, when in WHERE:
        d = h[h["tag"] == f"act/{block}/{where}"]
        if d.empty:
            continue
        edges, counts = _edges_counts(d)
        width = np.diff(edges)
        density = counts / max(counts.sum(), 1) / np.where(width > 0, width, 1)
        ax.stairs(density, edges, fill=True, alpha=0.45, color=color, label=f"{when} the norm ({where})")
        steps.add(int(d["step"].iloc[0]))
    if span is not None and span[1] > span[0]:
        ax.set_xlim(*span)
    ax.set_xlabel("activation value")
    ax.locator_params(nbins=5)
    ax.set_ylabel("density (fraction per unit)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper right")
    return steps


def _variances(ax, h: pd.DataFrame, block: str, ranges: Ranges) -> None:
    """Per-feature variances before and after the norm, on the bins every group shares
    (``shared``): on a log axis when they were binned on a log scale, the zeros (which a
    log axis cannot show) counted in the legend."""
    edges = ranges.variance_bins
    for where, color, when in WHERE:
        d = h[h["tag"] == f"act/{block}/{where}/feature_var"]
        if d.empty or edges is None:
            continue
        e, c = _edges_counts(d)
        zeros = int(c[0]) if ranges.log else 0
        counts = rebin(e[1:], c[1:], edges, log=True) if ranges.log else rebin(e, c, edges, log=False)
        label = f"{when} the norm" + (f" ({zeros} at variance 0, not drawn)" if zeros else "")
        ax.stairs(counts, edges, fill=True, alpha=0.45, color=color, label=label)
    if edges is not None:
        if ranges.log:
            log_axis(ax, "x", edges[0], edges[-1])
        else:
            ax.set_xlim(edges[0], edges[-1])
            ax.locator_params(axis="x", nbins=5)
        ax.legend(fontsize="x-small", loc="upper right")
    ax.set_xlabel("per-feature variance over the probe batch" + (" (log scale)" if ranges.log else ""))
    ax.set_ylabel("number of features")
    ax.locator_params(axis="y", nbins=5)
    ax.grid(alpha=0.3)


def activations(hists: dict[str, tuple[str, pd.DataFrame]], block: str, order: list[str], path: Path) -> Picture:
    """Per group (one run each): the values entering and leaving the norm layer of
    ``block``, and the per-feature variances before and after it, at the last probe."""
    title = f"Activations before and after the norm layer of {block}"
    all_groups = [g for g in order if g in hists]
    groups = all_groups[:MAX_ACTIVATION_GROUPS]
    if not groups:
        return Picture(path.name, title, "Not drawn: no completed run recorded activation histograms "
                                         "(histograms.csv; probes off with probe_every=0).", drawn=False)
    height = 2.9 * len(groups) + 0.9
    fig, axes = pyplot().subplots(len(groups), 2, figsize=(10, height), dpi=100, squeeze=False)
    steps: set[int] = set()
    ranges = shared({g: hists[g] for g in groups}, block)
    for row, group in zip(axes, groups, strict=True):
        _, h = hists[group]
        steps |= _values(row[0], h, block, ranges.values)
        _variances(row[1], h, block, ranges)
        row[0].set_title(literal(f"{group}: values"), fontsize="medium")
        row[1].set_title(literal(f"{group}: per-feature variance"), fontsize="medium")
    step_text = ", ".join(map(str, sorted(steps)))
    # fixed margins in inches (a constrained layout of this many panels costs a second): the
    # figure's title in the top 0.45 in, each panel's title in the 0.4 in above it
    fig.suptitle(f"{title} (probe batch, at the last probe: step {step_text})", y=1 - 0.12 / height, va="top")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.55 / height, top=1 - 0.8 / height,
                        hspace=1.1 / 2.9, wspace=0.25)
    save(fig, path)
    caption = (f"From histograms.csv (act/{block}/pre_norm, post_norm and their /feature_var) at each run's last "
               f"probe, the end of its training (step {step_text}); one run per group (its first completed seed "
               f"with readable histograms). Left: every value of the probe batch (x range shared by the groups: "
               f"the middle 99.8% of every histogram); right: the variance of each feature (channel) over the batch, "
               f"on bins every group shares" + (", equal on the log scale the probes binned them on (features at "
                                                 "variance 0 are counted in the legend)" if ranges.log else
                                                 ", equal widths as the probes binned them") + ".")
    return Picture(path.name, title, caption + (f" The first {len(groups)} of {len(all_groups)} groups in table "
                                                f"order." if len(all_groups) > len(groups) else ""))
