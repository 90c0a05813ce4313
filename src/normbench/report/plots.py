"""The report's pictures, with matplotlib's Agg backend (imported here only, when drawing).

Curves are aggregated per group before anything is drawn (mean over the completed seeds
at each logged step, with a t-based 95% band), so hundreds of runs draw as one line per
group. A picture whose data no run recorded is not drawn; its Picture says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .table import METRICS

# groups drawn in the per-group pictures (the first ones of the table): each panel costs
# matplotlib about 0.1 s to lay out and draw
MAX_PANELS = 12
MAX_ACTIVATION_GROUPS = 8


@dataclass
class Picture:
    file: str  # file name in the output directory
    title: str
    caption: str
    drawn: bool = True  # False: skipped, caption says why


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# drawn on a log scale: averaged as logarithms (a geometric mean, whose band stays positive)
GEOMETRIC = ("train/loss", "grad_norm/")


def aggregate(metrics: pd.DataFrame, groups: pd.Series, level: float = stats.LEVEL) -> pd.DataFrame:
    """Mean over the runs of each group at each step of each tag, with a t-based band:
    columns group, tag, step, mean, lo, hi, n. ``groups`` maps run_dir -> group label
    (the completed runs only). GEOMETRIC tags are averaged as logarithms and
    transformed back: their mean is the geometric mean, their band positive."""
    m = metrics[metrics["run_dir"].isin(groups.index)]
    geometric = m["tag"].str.startswith(GEOMETRIC).to_numpy()
    value = m["value"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(geometric, np.log(np.where(value > 0, value, np.nan)), value)
    m = pd.DataFrame({"group": m["run_dir"].map(groups).to_numpy(), "tag": m["tag"].to_numpy(),
                      "step": m["step"].to_numpy(), "value": value})
    m = m[np.isfinite(m["value"])]
    agg = m.groupby(["group", "tag", "step"], sort=True)["value"].agg(["mean", "std", "count"]).reset_index()
    half = stats.t_quantile(agg["count"].to_numpy() - 1, level) * agg["std"].to_numpy() / np.sqrt(agg["count"])
    agg = agg.assign(lo=agg["mean"] - half, hi=agg["mean"] + half).rename(columns={"count": "n"})
    back = agg["tag"].str.startswith(GEOMETRIC)
    agg.loc[back, ["mean", "lo", "hi"]] = np.exp(agg.loc[back, ["mean", "lo", "hi"]])
    return agg


def _log(ax, which: str) -> None:
    """A log scale with plain tick labels (0.1, 0.2, 0.5, 1): matplotlib's default ones are
    mathtext (10^-1), which costs most of the drawing time of a picture."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())  # minor ticks: dozens of tick objects per axis, each costly to draw


def _colors(order: list[str]) -> dict[str, tuple]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    return {g: cmap(i % cmap.N) for i, g in enumerate(order)}


def curve(agg: pd.DataFrame, tag: str, ylabel: str, order: list[str], path: Path, title: str,
          log: bool = False) -> Picture:
    """One line per group (mean over seeds) with its 95% band, over training steps."""
    mean = "Geometric mean" if tag.startswith(GEOMETRIC) else "Mean"
    picture = Picture(path.name, title, f"{mean} over the completed seeds of each group, shaded: its 95% t-interval "
                                        f"over seeds at each logged step (metrics.csv tag {tag}).")
    data = agg[agg["tag"] == tag]
    if data.empty:
        return Picture(path.name, title, f"Not drawn: no completed run recorded {tag}.", drawn=False)
    plt = _pyplot()
    colors = _colors(order)
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=100)
    for group, d in data.groupby("group", sort=False):
        ax.plot(d["step"], d["mean"], color=colors[group], label=group, lw=1.6)
        band = d["lo"].notna()
        if band.any():
            ax.fill_between(d["step"][band], d["lo"][band], d["hi"][band], color=colors[group], alpha=0.2, lw=0)
    ax.set_xlabel("training steps (optimizer updates)")
    ax.set_ylabel(ylabel)
    if log:
        _log(ax, "y")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    by_label = dict(zip(labels, handles, strict=True))
    ax.legend([by_label[g] for g in order if g in by_label], [g for g in order if g in by_label],
              fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return picture


def _grid(n: int, width: float = 4.2, height: float = 3.2, extra: float = 0.0):
    plt = _pyplot()
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(8.0, width * cols), height * rows + extra), dpi=100,
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return plt, fig, axes.flat


def grad_norms(agg: pd.DataFrame, order: list[str], path: Path) -> Picture:
    """One panel per group, one line per layer (mean over seeds), log scale."""
    title = "Gradient norm per layer"
    data = agg[agg["tag"].str.startswith("grad_norm/") & (agg["tag"] != "grad_norm/total")]
    groups = [g for g in order if g in set(data["group"])]
    if not groups:
        return Picture(path.name, title, "Not drawn: no completed run recorded grad_norm/<layer>.", drawn=False)
    shown = groups[:MAX_PANELS]
    layers = sorted(data["tag"].unique())
    legend_height = 0.6 + 0.22 * -(-len(layers) // 6)
    plt, fig, axes = _grid(len(shown), extra=0.6 + legend_height)
    cmap = plt.get_cmap("viridis")
    colors = {t: cmap(i / max(1, len(layers) - 1)) for i, t in enumerate(layers)}
    lo = data.loc[data["mean"] > 0, "mean"].min()
    hi = data["mean"].max()
    for ax, group in zip(axes, shown, strict=False):
        for tag, d in data[data["group"] == group].groupby("tag"):
            ax.plot(d["step"], d["mean"].where(d["mean"] > 0), color=colors[tag], lw=1.2,
                    label=tag.removeprefix("grad_norm/"))
        _log(ax, "y")
        if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
            ax.set_ylim(lo / 1.5, hi * 1.5)
        ax.set_title(group, fontsize="medium")
        ax.set_xlabel("training steps")
        ax.locator_params(axis="x", nbins=5)  # fewer ticks: each costs a panel time to build and draw
        ax.set_ylabel("gradient L2 norm (log scale)")
        ax.grid(alpha=0.3, which="both")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize="small", loc="lower center", ncols=min(6, len(layers)),
               title="layer")
    fig.suptitle(title + " (geometric mean over seeds)")
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.9 / height, bottom=(legend_height + 0.6) / height,
                        hspace=0.55, wspace=0.35)
    fig.savefig(path)
    plt.close(fig)
    more = f" The first {len(shown)} of {len(groups)} groups in table order." if len(groups) > len(shown) else ""
    return Picture(path.name, title, "L2 norm of each layer's gradient (metrics.csv grad_norm/<layer>), geometric "
                                     "mean over the completed seeds of each group; one panel per group, same log "
                                     "scale."
                                     + more)


def distribution(runs: pd.DataFrame, table: pd.DataFrame, metric: str, path: Path) -> Picture:
    """One column per group: a point per completed run, the mean and its bootstrap interval."""
    label = METRICS[metric].label
    title = f"{label} per group"
    done = runs[(runs["status"] == "completed") & runs[metric].notna()]
    if done.empty:
        return Picture(path.name, title, f"Not drawn: no completed run has {metric}.", drawn=False)
    plt = _pyplot()
    order = list(table["group"])
    x = {g: i for i, g in enumerate(order)}
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(order) + 2), 5), dpi=100)
    xs = done["group"].map(x).to_numpy(dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(xs))
    ax.scatter(xs + jitter, done[metric], s=18, color="tab:blue", alpha=0.7, label="one run (seed)", zorder=3)
    mean = table[f"{label} mean"].to_numpy(dtype=float)
    lo, hi = table[f"{label} CI low"].to_numpy(dtype=float), table[f"{label} CI high"].to_numpy(dtype=float)
    pos = np.arange(len(order))
    ok = np.isfinite(lo)
    ax.errorbar(pos[ok] + 0.3, mean[ok], yerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o", color="black",
                capsize=4, label="mean, 95% bootstrap CI", zorder=4)
    ax.plot(pos[~ok] + 0.3, mean[~ok], "o", color="black", mfc="white", label="mean (one run: no CI)", zorder=4)
    ax.set_xticks(pos, [g.replace(" ", "\n") for g in order], fontsize="small",
                  rotation=0 if len(order) <= 6 else 60, ha="center" if len(order) <= 6 else "right")
    unit = " (fraction)" if metric.endswith("_acc") else ""
    ax.set_ylabel(label + unit)
    ax.set_xlabel("configuration group")
    ax.set_title(title + " (completed runs)")
    ax.grid(alpha=0.3, axis="y")
    handles, labels = ax.get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if lab != "mean (one run: no CI)" or (~ok).any()]
    ax.legend([handles[i] for i in keep], [labels[i] for i in keep], fontsize="small", loc="upper left",
              bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Picture(path.name, title, f"Each point is one completed run's {metric}; black: the group mean and "
                                     f"its 95% bootstrap interval over seeds (the table's numbers).")


def activations(hists: dict[str, tuple[str, pd.DataFrame]], block: str, order: list[str], path: Path) -> Picture:
    """Per group (one run each): the values entering and leaving the norm layer of
    ``block``, and the per-feature variances before and after it, at the last probe."""
    title = f"Activations before and after the norm layer of {block}"
    all_groups = [g for g in order if g in hists]
    groups = all_groups[:MAX_ACTIVATION_GROUPS]
    if not groups:
        return Picture(path.name, title, "Not drawn: no completed run recorded activation histograms "
                                         "(histograms.csv; probes off with probe_every=0).", drawn=False)
    plt = _pyplot()
    fig, axes = plt.subplots(len(groups), 2, figsize=(10, 2.8 * len(groups)), dpi=100, squeeze=False)
    steps = set()
    for row, group in zip(axes, groups, strict=True):
        run_dir, h = hists[group]
        ax = row[0]  # the values: density histograms, before and after on one axis
        for where, color in (("pre_norm", "tab:orange"), ("post_norm", "tab:blue")):
            d = h[h["tag"] == f"act/{block}/{where}"].sort_values("left")
            if d.empty:
                continue
            edges = np.append(d["left"].to_numpy(), d["right"].to_numpy()[-1])
            counts = d["count"].to_numpy(dtype=float)
            width = np.diff(edges)
            density = counts / max(counts.sum(), 1) / np.where(width > 0, width, 1)
            ax.stairs(density, edges, fill=True, alpha=0.45, color=color,
                      label=f"{'before' if where == 'pre_norm' else 'after'} the norm ({where})")
            steps.add(int(d["step"].iloc[0]))
        ax.set_xlabel("activation value")
        ax.locator_params(nbins=5)
        ax.set_ylabel("density (fraction per unit)")
        ax.grid(alpha=0.3)
        ax = row[1]  # per-feature variances: after a norm often all within 1e-6 of 1, so both
        # histograms are re-binned (by bin centre) onto 40 shared bins, log-spaced when all are positive
        var = h[h["tag"].isin([f"act/{block}/pre_norm/feature_var", f"act/{block}/post_norm/feature_var"])]
        var = var.assign(centre=(var["left"] + var["right"]) / 2)
        if not var.empty:
            lo, hi = var["centre"].min(), var["centre"].max()
            positive = lo > 0
            if positive:
                edges = np.geomspace(lo / 1.2, hi * 1.2, 41)
            else:
                edges = np.linspace(lo - 0.05 * abs(lo) - 1e-12, hi + 0.05 * abs(hi) + 1e-12, 41)
            for where, color in (("pre_norm", "tab:orange"), ("post_norm", "tab:blue")):
                d = var[var["tag"] == f"act/{block}/{where}/feature_var"]
                if d.empty:
                    continue
                counts, _ = np.histogram(d["centre"], bins=edges, weights=d["count"])
                ax.stairs(counts, edges, fill=True, alpha=0.45, color=color,
                          label=f"{'before' if where == 'pre_norm' else 'after'} the norm")
            if positive:
                _log(ax, "x")
            ax.set_xlabel("per-feature variance over the probe batch" + (" (log scale)" if positive else ""))
        ax.set_ylabel("number of features")
        ax.locator_params(axis="y", nbins=5)
        ax.grid(alpha=0.3)
        row[0].set_title(f"{group}: values", fontsize="medium")
        row[1].set_title(f"{group}: per-feature variance", fontsize="medium")
        row[0].legend(fontsize="x-small", loc="upper right")
    step_text = ", ".join(map(str, sorted(steps)))
    fig.suptitle(f"{title} (probe batch, step {step_text})")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.6 / fig.get_figheight(), top=1 - 0.7 / fig.get_figheight(),
                        hspace=0.75, wspace=0.25)
    fig.savefig(path)
    plt.close(fig)
    caption = (f"From histograms.csv (act/{block}/pre_norm, post_norm and their /feature_var) at each run's last "
               f"probe, step {step_text}; one run per group (its first completed seed with readable histograms). "
               f"Left: every value of the probe batch; right: the variance of each feature (channel) over the batch.")
    return Picture(path.name, title, caption
                   + (f" The first {len(groups)} of {len(all_groups)} groups in table order."
                      if len(all_groups) > len(groups) else ""))
