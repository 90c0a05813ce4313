"""Every picture of a report, in order: what each is drawn from, and which are left out."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from . import load
from .activations import activations
from .plots import Picture, aggregate, curve, distribution, grad_norms, per_seed
from .style import styles
from .table import Summary, short, value_text
from .xaxis import XAXES, positions
from ..errors import UsageError

LANDSCAPE = {"landscape/loss_range": "loss range along the gradient",
             "landscape/grad_change": "largest gradient change (L2)",
             "landscape/beta": "effective beta-smoothness"}


def _block(hists: dict, wanted: str | None, order: tuple[str, ...] | None) -> str | None:
    """The norm site pictured: the one asked for, else block2, else the middle one recorded
    (in the model's ``order`` of its sites, from summary.json, where the runs recorded it)."""
    recorded = {t.split("/")[1] for _, h in hists.values() for t in h["tag"].unique()}
    blocks = [b for b in order if b in recorded] if order else sorted(recorded, key=lambda b: (len(b), b))
    blocks += sorted(recorded - set(blocks))
    if wanted is not None:
        if blocks and wanted not in blocks:
            raise UsageError(f"--block {wanted}: no activation histograms of it in these runs; "
                             f"allowed: {', '.join(blocks)}")
        return wanted
    if not blocks:
        return None
    return "block2" if "block2" in blocks else blocks[(len(blocks) - 1) // 2]


def prepare(runs: pd.DataFrame, wanted_block: str | None) -> tuple[str | None, dict]:
    """The block to picture and, per group, one run's histograms of it: the group's first
    completed seed with a readable histograms.csv (a corrupt one: a warning, next seed)."""
    done = runs[runs["status"] == "completed"]
    seed_col = "config.seed" if "config.seed" in done else "run_dir"
    hists = {}
    for group, run_dirs in done.sort_values([seed_col, "run_dir"]).groupby("group", sort=False)["run_dir"]:
        for run_dir in run_dirs.iloc[:3]:
            try:
                h = load.read_histograms(run_dir)
            except load.Skip as e:  # the run stays in the table; only its picture is missing
                print(f"normbench: warning: left {run_dir} out of the activation picture: {e}", file=sys.stderr)
                continue
            if h is not None:
                hists[group] = (run_dir, h)
            break
    sites = done["sites"].dropna() if "sites" in done else pd.Series(dtype=object)
    block = _block(hists, wanted_block, sites.iloc[0] if len(sites) else None)
    hists = {g: (d, h[h["tag"].str.startswith(f"act/{block}/")]) for g, (d, h) in hists.items()}
    return block, {g: v for g, v in hists.items() if not v[1].empty}


def draw(prepared, loaded, summary: Summary, axes: list[str], metric: str, out: Path, x: str) -> list[Picture]:
    """Draw every picture into ``out``; a picture no run has data for is removed there (no
    stale one from an earlier report) and returned with the reason it is missing."""
    runs = loaded.runs
    table = summary.table
    order = list(table["group"])
    settings = {g: {short(k): value_text(v) for k, v in zip(axes, row, strict=True)}
                for g, row in zip(table["group"], table[[short(k) for k in axes]].itertuples(index=False),
                                  strict=True)}
    st = styles(settings, order)
    done = runs[runs["status"] == "completed"].set_index("run_dir")
    seeds = per_seed(positions(loaded.metrics, runs, x), done["group"], done.get("config.seed"))
    agg = aggregate(seeds)
    xaxis = XAXES[x]
    block, hists = prepared
    pictures = [
        curve(agg, seeds, "val/acc", "validation accuracy (fraction)", order, st, out / "val_acc.png",
              "Validation accuracy", xaxis, bounds=(0.0, 1.0)),
        curve(agg, seeds, "train/loss", "training loss (cross-entropy, nats)", order, st, out / "train_loss.png",
              "Training loss", xaxis, log=True),
        grad_norms(agg, order, out / "grad_norms.png", xaxis, layers=list(dict.fromkeys(loaded.metrics["tag"]))),
        distribution(runs, table, metric, summary.scales[metric], summary.baseline, out / f"{metric}_per_seed.png",
                     st),
        activations(hists, block or "block2", order, out / "activations.png"),
    ]
    for tag, label in LANDSCAPE.items():  # only when runs recorded the loss-landscape probe
        if (agg["tag"] == tag).any():
            name = tag.replace("/", "_") + ".png"
            positive = bool((seeds.loc[seeds["tag"] == tag, "value"] > 0).all())
            pictures.append(curve(agg, seeds, tag, label, order, st, out / name, f"Loss landscape: {label}", xaxis,
                                  log=positive))
    for p in pictures:
        if not p.drawn:
            (out / p.file).unlink(missing_ok=True)
    return pictures
