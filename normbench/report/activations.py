"""The activation picture: what one block's norm layer does to the values passing through
it, at each group's last probe (the end of training), from histograms.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .plots import MAX_ACTIVATION_GROUPS, Picture
from .style import literal, log_axis, pyplot, save

WHERE = (("pre_norm", "tab:orange", "before"), ("post_norm", "tab:blue", "after"))


def _values(ax, h: pd.DataFrame, block: str) -> set[int]:
    """Density histograms of the values entering and leaving the norm, on one axis."""
    steps = set()
    for where, color, when in WHERE:
        d = h[h["tag"] == f"act/{block}/{where}"].sort_values("left")
        if d.empty:
            continue
        edges = np.append(d["left"].to_numpy(), d["right"].to_numpy()[-1])
        counts = d["count"].to_numpy(dtype=float)
        width = np.diff(edges)
        density = counts / max(counts.sum(), 1) / np.where(width > 0, width, 1)
        ax.stairs(density, edges, fill=True, alpha=0.45, color=color, label=f"{when} the norm ({where})")
        steps.add(int(d["step"].iloc[0]))
    ax.set_xlabel("activation value")
    ax.locator_params(nbins=5)
    ax.set_ylabel("density (fraction per unit)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper right")
    return steps


def _variances(ax, h: pd.DataFrame, block: str) -> None:
    """Per-feature variances before and after the norm, re-binned (by bin centre) onto 40
    shared bins, log-spaced when all are positive (after a norm they are often all within
    1e-6 of 1)."""
    var = h[h["tag"].isin([f"act/{block}/pre_norm/feature_var", f"act/{block}/post_norm/feature_var"])]
    var = var.assign(centre=(var["left"] + var["right"]) / 2)
    if not var.empty:
        lo, hi = var["centre"].min(), var["centre"].max()
        positive = lo > 0
        if positive:
            edges = np.geomspace(lo / 1.2, hi * 1.2, 41)
        else:
            edges = np.linspace(lo - 0.05 * abs(lo) - 1e-12, hi + 0.05 * abs(hi) + 1e-12, 41)
        for where, color, when in WHERE:
            d = var[var["tag"] == f"act/{block}/{where}/feature_var"]
            if not d.empty:
                counts, _ = np.histogram(d["centre"], bins=edges, weights=d["count"])
                ax.stairs(counts, edges, fill=True, alpha=0.45, color=color, label=f"{when} the norm")
        if positive:
            log_axis(ax, "x", edges[0], edges[-1])
        ax.set_xlabel("per-feature variance over the probe batch" + (" (log scale)" if positive else ""))
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
    for row, group in zip(axes, groups, strict=True):
        _, h = hists[group]
        steps |= _values(row[0], h, block)
        _variances(row[1], h, block)
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
               f"with readable histograms). Left: every value of the probe batch; right: the variance of each "
               f"feature (channel) over the batch.")
    return Picture(path.name, title, caption + (f" The first {len(groups)} of {len(all_groups)} groups in table "
                                                f"order." if len(all_groups) > len(groups) else ""))
