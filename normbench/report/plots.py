"""The report's pictures, with matplotlib's Agg backend (imported only when drawing).

Curves are aggregated per group before anything is drawn: each seed's curve (the mean of
its runs where a group pools a key that varies), then the mean over the seeds at each
logged step, so hundreds of runs draw as one line per group. How a group's spread is
drawn depends on its seeds (``FEW_SEEDS``): with fewer than five, each seed is a thin line
under the thick mean (a 95% t-band over two seeds is +-12.7 standard errors wide, and
several such bands bury the lines); from five up, the band of the same t-interval as the
table. Each axis shows where the curves are, not where the widest band goes, and bands are
clipped to what the quantity can be (an accuracy to [0, 1]). A picture whose data no run
recorded is not drawn; its Picture says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .style import MAX_PANELS, Styles, finite_range, legend, literal, log_axis, padded, pyplot, save
from .metrics import METRICS, SCALES
from .xaxis import XAxis

MAX_ACTIVATION_GROUPS = 8
FEW_SEEDS = 5  # below this many seeds a group's curve is drawn seed by seed, from it up with its band


@dataclass
class Picture:
    file: str  # file name in the output directory
    title: str
    caption: str
    drawn: bool = True  # False: skipped, caption says why


# drawn on a log scale: averaged as logarithms (a geometric mean, whose band stays positive)
GEOMETRIC = ("train/loss", "grad_norm/")


def per_seed(metrics: pd.DataFrame, groups: pd.Series, seeds: pd.Series | None = None) -> pd.DataFrame:
    """Each seed's curve of each tag in each group: columns group, seed, tag, x, value, the
    mean of the group's runs of that seed at each position ``x`` (xaxis.positions; one run
    unless the group pools a key that varies). ``groups`` maps run_dir -> group label (the
    completed runs only), ``seeds`` run_dir -> seed (default: each run its own). Values of
    GEOMETRIC tags are logarithms (averaged as such: a geometric mean); non-finite ones
    (and, for those tags, values <= 0) are left out."""
    m = metrics[metrics["run_dir"].isin(groups.index)]
    geometric = m["tag"].str.startswith(GEOMETRIC).to_numpy()
    value = m["value"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(geometric, np.log(np.where(value > 0, value, np.nan)), value)
    seed = m["run_dir"].map(seeds) if seeds is not None else m["run_dir"]
    m = pd.DataFrame({"group": m["run_dir"].map(groups).to_numpy(), "seed": seed.astype(str).to_numpy(),
                      "tag": m["tag"].to_numpy(), "x": m["x"].to_numpy(), "value": value})
    m = m[np.isfinite(m["value"])]
    return m.groupby(["group", "seed", "tag", "x"], sort=True)["value"].mean().reset_index()


def aggregate(seed_curves: pd.DataFrame, level: float = stats.LEVEL) -> pd.DataFrame:
    """Mean over the seeds of each group (``per_seed``'s curves) at each position of each
    tag, with a t-based band: columns group, tag, x, mean, lo, hi, n (seeds). GEOMETRIC
    tags are transformed back: their mean is the geometric mean, their band positive."""
    agg = seed_curves.groupby(["group", "tag", "x"], sort=True)["value"].agg(["mean", "std", "count"]).reset_index()
    half = stats.t_quantile(agg["count"].to_numpy() - 1, level) * agg["std"].to_numpy() / np.sqrt(agg["count"])
    agg = agg.assign(lo=agg["mean"] - half, hi=agg["mean"] + half).rename(columns={"count": "n"})
    back = agg["tag"].str.startswith(GEOMETRIC)
    with np.errstate(over="ignore"):
        agg.loc[back, ["mean", "lo", "hi"]] = np.exp(agg.loc[back, ["mean", "lo", "hi"]])
    return agg


def shown(seed_curves: pd.DataFrame, tag: str) -> pd.DataFrame:
    """``per_seed``'s curves of ``tag`` as drawn (GEOMETRIC tags back from their logarithms)."""
    d = seed_curves[seed_curves["tag"] == tag]
    if tag.startswith(GEOMETRIC):
        with np.errstate(over="ignore"):
            d = d.assign(value=np.exp(d["value"]))
    return d


def _panels(n: int, width: float, height: float, extra: float = 0.0, constrained: bool = True):
    """A figure of ``n`` panels (three to a row); a constrained layout unless the caller
    sets fixed margins."""
    plt = pyplot()
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(8.0, width * cols), height * rows + extra), dpi=100,
                             squeeze=False, layout="constrained" if constrained else None)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def curve(agg: pd.DataFrame, seed_curves: pd.DataFrame, tag: str, ylabel: str, order: list[str], st: Styles,
          path: Path, title: str, xaxis: XAxis, log: bool = False,
          bounds: tuple[float, float] | None = None) -> Picture:
    """One thick line per group, the mean over its seeds, over ``xaxis``; under it a thin
    line per seed where the group has fewer than FEW_SEEDS seeds, its 95% band where it
    has more; one panel per value of the keys neither colour nor line style encodes."""
    mean = "geometric mean" if tag.startswith(GEOMETRIC) else "mean"
    data = agg[(agg["tag"] == tag) & agg["group"].isin(order)]
    if data.empty:
        return Picture(path.name, title, f"Not drawn: no completed run recorded {tag}.", drawn=False)
    seeds = shown(seed_curves, tag)
    seeds = seeds[seeds["group"].isin(order)]
    few = seeds.groupby("group")["seed"].nunique() < FEW_SEEDS
    thin = seeds[seeds["group"].map(few).fillna(False).astype(bool)]
    values = pd.concat([data["mean"], thin["value"]])
    limits = finite_range(values[values > 0] if log else values)
    if limits is None:
        return Picture(path.name, title, f"Not drawn: no finite value of {tag}.", drawn=False)
    lo, hi = padded(*limits, log=log, bounds=bounds)
    panels = st.panels[:MAX_PANELS]
    fig, axes = _panels(len(panels), width=5.0 if len(panels) > 1 else 9.0, height=4.2, extra=0.8)
    for ax, panel in zip(axes, panels, strict=True):
        for group, d in data.groupby("group", sort=False):
            s = st.groups[group]
            if s.panel != panel:
                continue
            if few.get(group, True):
                for _, one in thin[thin["group"] == group].groupby("seed"):
                    ax.plot(one["x"], one["value"], color=s.color, ls=s.linestyle, lw=0.8, alpha=0.45)
            else:
                band = d["lo"].notna() & d["hi"].notna()
                if band.any():  # clipped to the axis: the band never decides the range
                    ax.fill_between(d["x"][band], np.clip(d["lo"][band], lo, hi), np.clip(d["hi"][band], lo, hi),
                                    color=s.color, alpha=0.15, lw=0)
            ax.plot(d["x"], d["mean"], color=s.color, ls=s.linestyle, lw=2.2)
        if log:
            log_axis(ax, "y", lo, hi)
        else:
            ax.set_ylim(lo, hi)
        ax.set_xlabel(xaxis.label)
        ax.set_ylabel(ylabel + (" (log scale)" if log else ""))
        ax.grid(alpha=0.3)
        if panel:
            ax.set_title(literal(panel), fontsize="medium")
    drawn = [g for g in order if g in set(data["group"])]
    legend(fig, st, order, spread={"seeds" if few.get(g, True) else "band" for g in drawn}, mean=mean,
           loc="outside right upper")
    fig.suptitle(title)
    save(fig, path)
    more = f" The first {len(panels)} of {len(st.panels)} panels." if len(st.panels) > len(panels) else ""
    return Picture(path.name, title, f"Thick: the {mean} over the completed seeds of each group at each {xaxis.per} "
                                     f"(metrics.csv tag {tag}; where a group pools a key that varies, each seed's "
                                     f"runs are averaged first). Groups with fewer than {FEW_SEEDS} seeds: each seed "
                                     f"a thin line; from {FEW_SEEDS} seeds: shaded, the 95% t-interval over seeds, "
                                     f"clipped to the axis." + more)


MAX_LAYER_LEGEND = 12  # more layers than this: a colour bar from the first layer to the last, not a legend


def grad_norms(agg: pd.DataFrame, order: list[str], path: Path, xaxis: XAxis, layers: list[str] = ()) -> Picture:
    """One panel per group, one line per layer (geometric mean over seeds), log scale;
    the layers coloured from the input to the output (``layers``: the tags in the order
    the runs recorded them, the model's own order)."""
    title = "Gradient norm per layer"
    data = agg[agg["tag"].str.startswith("grad_norm/") & (agg["tag"] != "grad_norm/total")]
    groups = [g for g in order if g in set(data["group"])]
    limits = finite_range(data.loc[data["mean"] > 0, "mean"])
    if not groups or limits is None:
        return Picture(path.name, title, "Not drawn: no completed run recorded grad_norm/<layer>.", drawn=False)
    shown_groups = groups[:MAX_PANELS]
    recorded = set(data["tag"])
    tags = [t for t in layers if t in recorded] + sorted(recorded.difference(layers))
    many = len(tags) > MAX_LAYER_LEGEND
    legend_height = 1.1 if many else 0.6 + 0.25 * -(-len(tags) // 6)
    fig, axes = _panels(len(shown_groups), width=4.2, height=3.3, extra=0.8 + legend_height, constrained=False)
    cmap = pyplot().get_cmap("viridis")
    colors = {t: cmap(i / max(1, len(tags) - 1)) for i, t in enumerate(tags)}
    lo, hi = padded(*limits, log=True)
    for ax, group in zip(axes, shown_groups, strict=True):
        mine = data[data["group"] == group]
        for tag in tags:
            d = mine[mine["tag"] == tag]
            if not d.empty:
                ax.plot(d["x"], d["mean"].where(d["mean"] > 0), color=colors[tag], lw=1.0 if many else 1.2,
                        label=tag.removeprefix("grad_norm/"))
        log_axis(ax, "y", lo, hi)
        ax.set_title(literal(group), fontsize="medium")
        ax.set_xlabel(xaxis.label.split(" (")[0])
        ax.locator_params(axis="x", nbins=5)
        ax.set_ylabel("gradient L2 norm (log scale)")
        ax.grid(alpha=0.3)
    height = fig.get_figheight()
    if many:  # one line per layer cannot be told apart anyway: where each colour sits in the network
        _depth_bar(fig, cmap, [t.removeprefix("grad_norm/") for t in tags], bottom=0.6 / height,
                   height=0.22 / height)
    else:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, [literal(x) for x in labels], fontsize="small", loc="lower center",
                   ncols=min(6, len(tags)), title="layer")
    # fixed margins in inches (a constrained layout of many panels costs most of a second)
    fig.suptitle(title + " (geometric mean over seeds)", y=1 - 0.12 / height, va="top")
    fig.subplots_adjust(left=0.09, right=0.98, top=1 - 0.75 / height, bottom=(legend_height + 0.65) / height,
                        hspace=1.0 / 3.3, wspace=0.4)
    save(fig, path)
    more = f" The first {len(shown_groups)} of {len(groups)} groups in table order." if len(groups) > len(
        shown_groups) else ""
    colours = (f"coloured by depth, from the first layer (dark) to the last (yellow), {len(tags)} layers"
               if many else "a colour per layer, from the first (dark) to the last (yellow)")
    return Picture(path.name, title, "L2 norm of each layer's gradient (metrics.csv grad_norm/<layer>), geometric "
                                     "mean over the completed seeds of each group; one panel per group, same log "
                                     f"scale; {colours}." + more)


def _depth_bar(fig, cmap, names: list[str], bottom: float, height: float) -> None:
    """A horizontal colour bar under the panels, labelled with a few layers' names."""
    # matplotlib: only when pictures are drawn (not with --no-pictures)
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize

    ax = fig.add_axes((0.2, bottom, 0.6, height))
    bar = ColorbarBase(ax, cmap=cmap, norm=Normalize(0, len(names) - 1), orientation="horizontal")
    picks = sorted({0, len(names) // 3, 2 * len(names) // 3, len(names) - 1})
    bar.set_ticks(picks, labels=[literal(names[i]) for i in picks], fontsize="small")
    bar.set_label("layer, from the input to the output", fontsize="small")


def distribution(runs: pd.DataFrame, table: pd.DataFrame, metric: str, scale: str, baseline: str,
                 path: Path, st: Styles | None = None) -> Picture:
    """One column per group: a point per completed run in the group's colour (``st``), the
    mean (on the log scale the geometric mean, on a log axis) and its t-interval (the
    table's numbers); the baseline's mean and interval across the picture."""
    label = METRICS[metric].label
    center = SCALES[scale].center
    title = f"{label} per group"
    done = runs[(runs["status"] == "completed") & runs[metric].notna()]
    if done.empty:
        return Picture(path.name, title, f"Not drawn: no completed run has {metric}.", drawn=False)
    plt = pyplot()
    order = list(table["group"])
    x = {g: i for i, g in enumerate(order)}
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(order) + 3), 5), dpi=100, layout="constrained")
    xs = done["group"].map(x).to_numpy(dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(xs))
    colors = [st.groups[g].color for g in done["group"]] if st is not None else ["tab:blue"] * len(done)
    ax.scatter(xs + jitter, done[metric], s=18, c=colors, alpha=0.7, zorder=3)
    ax.scatter([], [], s=18, color="0.45", alpha=0.7, label="one run (seed), in its group's colour")
    mean = table[f"{label} {center}"].to_numpy(dtype=float)
    lo, hi = table[f"{label} CI low"].to_numpy(dtype=float), table[f"{label} CI high"].to_numpy(dtype=float)
    pos = np.arange(len(order))
    ok = np.isfinite(lo)
    b = order.index(baseline)
    if np.isfinite(mean[b]):
        ax.axhline(mean[b], color="tab:red", ls="--", lw=1, label=f"baseline {center}", zorder=2)
        if ok[b]:
            ax.axhspan(lo[b], hi[b], color="tab:red", alpha=0.08, lw=0, label="baseline 95% t-interval", zorder=1)
    ax.errorbar(pos[ok] + 0.3, mean[ok], yerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o", color="black",
                capsize=4, label=f"{center}, 95% t-interval", zorder=4)
    if (~ok).any():
        ax.plot(pos[~ok] + 0.3, mean[~ok], "o", color="black", mfc="white", label=f"{center} (no interval)", zorder=4)
    names = [literal(("baseline: " if g == baseline else "") + g).replace(" ", "\n") for g in order]
    ax.set_xticks(pos, names, fontsize="small", rotation=0 if len(order) <= 6 else 60,
                  ha="center" if len(order) <= 6 else "right")
    ax.get_xticklabels()[b].set_fontweight("bold")
    limits = finite_range(np.concatenate([done[metric].to_numpy(dtype=float), mean, lo, hi]))
    fraction = METRICS[metric].bounds == (0.0, 1.0)
    bounds = (0.0, 1.0) if fraction else None
    log = scale == "log"
    if limits is not None and log:
        log_axis(ax, "y", *padded(*limits, log=True))
    elif limits is not None:
        ax.set_ylim(*padded(*limits, log=False, bounds=bounds))
    ax.set_xlim(-0.6, len(order) - 0.2)
    ax.set_ylabel(label + (" (fraction)" if fraction else " (log scale)" if log else ""))
    ax.set_xlabel("configuration group")
    ax.set_title(title + " (completed runs)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    save(fig, path)
    return Picture(path.name, title, f"Each point is one completed run's {metric}; black: the group {center} and its "
                                     f"95% t-interval over seeds (the table's numbers); red: the baseline's.")
