"""``normbench report [PATH ...] [options]``: its options, and the order of the work.

Everything is read and checked before anything is written: bad input leaves no files.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ..errors import UsageError
from . import stats
from .table import METRICS

OUTPUTS = Path("outputs")
EPILOG = """\
writes to the output directory:
  summary.csv   the table, one column per number (mean, std, CI low/high of each result)
  summary.md    the same table as Markdown, mean ± std [95% CI] in one cell
  runs.csv      one row per run: directory, status, group settings, seed, results
  *.png         the pictures: curves, gradient norms, distribution, activations
  report.html   the table and every picture on one page, self-contained

examples:
  normbench report                                   # the newest sweep under outputs/
  normbench report outputs/multirun/2026-11-23/10-12-16-536212 --baseline norm=none
  normbench report outputs --by norm,placement --metric best_val_acc --out /tmp/report
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line of normbench's own, not argparse's usage block
        raise UsageError(f"{message}; allowed: see normbench report --help")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="normbench report", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                description="Compare runs across seeds: one row per configuration group with mean, standard "
                            "deviation and 95% bootstrap interval of each result over the completed seeds, "
                            "counts of diverged/failed/interrupted runs, the difference to a baseline group "
                            "with its own interval, pictures, and one self-contained report.html.")
    p.add_argument("paths", nargs="*", metavar="PATH", type=Path,
                   help="run directories, sweeps, or any directories holding them (searched recursively for "
                        "summary.json); default: the newest sweep under outputs/ (by its multirun.yaml)")
    p.add_argument("--by", metavar="KEYS",
                   help="comma-separated config keys to group by, as in overrides (norm, placement, "
                        "model.depth, ...); default: every key whose value differs between the runs, but seed")
    p.add_argument("--metric", default="final_val_acc", metavar="NAME",
                   help=f"the summary.json number to sort by, to compare with the baseline and to show per "
                        f"seed; default: final_val_acc; allowed: {', '.join(METRICS)}")
    p.add_argument("--baseline", metavar="SETTINGS",
                   help="the group the others are compared with, by its settings, e.g. 'norm=none' or "
                        "'norm=bn placement=pre'; it must match exactly one group; default: norm=none when that "
                        "is one group, else the first group in alphabetical order")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output directory; default: <PATH>/report (with several PATHs: their common "
                        "parent's report/)")
    p.add_argument("--block", metavar="NAME",
                   help="the block whose activations are pictured before and after its norm layer; "
                        "default: block2 when recorded, else the middle block")
    p.add_argument("--resamples", type=int, default=stats.RESAMPLES, metavar="N",
                   help=f"bootstrap resamples (default {stats.RESAMPLES}); the intervals are 95%% percentile "
                        f"intervals with a fixed seed, so the same runs give the same report")
    p.add_argument("--seed", type=int, default=stats.SEED, help="the bootstrap's random seed (default 0)")
    return p


def _default_out(paths: list[Path]) -> Path:
    if len(paths) == 1:
        return paths[0] / "report"
    return Path(os.path.commonpath([p.resolve() for p in paths])) / "report"


def _check(args) -> None:
    if args.metric not in METRICS:
        raise UsageError(f"--metric {args.metric}: not a result normbench records; allowed: {', '.join(METRICS)}")
    if args.resamples < 100:
        raise UsageError(f"--resamples {args.resamples}: too few for a 95% interval; allowed: an integer >= 100")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a directory; allowed: a directory (made if missing)")


def _block(hists: dict, wanted: str | None) -> str | None:
    """The block pictured: the one asked for, else block2, else the middle one recorded."""
    blocks = sorted({t.split("/")[1] for _, h in hists.values() for t in h["tag"].unique()},
                    key=lambda b: (len(b), b))
    if wanted is not None:
        if blocks and wanted not in blocks:
            raise UsageError(f"--block {wanted}: no activation histograms of it in these runs; "
                             f"allowed: {', '.join(blocks)}")
        return wanted
    if not blocks:
        return None
    return "block2" if "block2" in blocks else blocks[(len(blocks) - 1) // 2]


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    _check(args)
    from . import load, plots, table

    paths = args.paths or [load.latest_sweep(OUTPUTS)]
    loaded = load.load(paths)
    for directory, why in loaded.skipped:
        print(f"normbench: warning: skipped {directory}: {why}", file=sys.stderr)
    runs = loaded.runs
    if runs.empty:
        raise UsageError(f"PATH {' '.join(map(str, paths))}: none of its {len(loaded.skipped)} run directories "
                         f"could be read (see the warnings); allowed: directories made by normbench train")

    by = [k.strip() for k in args.by.split(",") if k.strip()] if args.by is not None else None
    axes = table.resolve_axes(runs, loaded.config_keys, by)
    runs["group"] = table.group_labels(runs, axes)
    summary, baseline = table.summarize(runs, axes, args.metric, args.baseline, args.resamples, args.seed)
    order = list(summary["group"])

    done = runs[runs["status"] == "completed"]
    block, hists = _activation_runs(done, args.block)

    # everything is read and checked: write
    out = args.out or _default_out(paths)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot make this directory ({e.strerror}); allowed: a directory you can "
                         f"write to") from e
    summary.to_csv(out / "summary.csv", index=False)
    md = table.readable(summary, axes, args.metric)
    metric_label = METRICS[args.metric].label
    facts = _facts(runs, loaded.skipped, axes, baseline, args)
    (out / "summary.md").write_text("\n".join(f"- {f}" for f in facts) + "\n\n" + table.markdown(md))
    keys = [f"config.{k}" for k in dict.fromkeys([*axes, "seed"]) if f"config.{k}" in runs]
    runs_csv = runs[["run_dir", "status", "group", *keys, *load.SUMMARY_NUMBERS, "error", "overrides"]]
    runs_csv.rename(columns={k: table.short(k.removeprefix("config.")) for k in keys}).to_csv(
        out / "runs.csv", index=False)

    groups = done.set_index("run_dir")["group"]
    agg = plots.aggregate(loaded.metrics, groups)
    pictures = [
        plots.curve(agg, "val/acc", "validation accuracy (fraction)", order, out / "val_acc.png",
                    "Validation accuracy"),
        plots.curve(agg, "train/loss", "training loss (cross-entropy, nats)", order, out / "train_loss.png",
                    "Training loss", log=True),
        plots.grad_norms(agg, order, out / "grad_norms.png"),
        plots.distribution(runs, summary, args.metric, out / f"{args.metric}_per_seed.png"),
        plots.activations(hists, block or "block2", order, out / "activations.png"),
    ]
    for p in pictures:
        if not p.drawn:
            (out / p.file).unlink(missing_ok=True)  # no stale picture from an earlier report
    from . import page

    base_row = order.index(baseline)
    command = "normbench report " + " ".join(shlex.quote(a) for a in argv)
    html_path = page.write(out, title=f"normbench report: {metric_label}", command=command.strip(), readable=md,
                           baseline_row=base_row, facts=facts, pictures=pictures, skipped=loaded.skipped)

    compact = table.readable(summary, axes, args.metric, compact=True)
    print("\n".join(facts))
    print(compact.to_string(index=False))
    print(f"table: {load.shown(out / 'summary.md')} (every result), {load.shown(out / 'summary.csv')}")
    print(f"report: {load.shown(html_path)}")
    return 0


def _activation_runs(done, wanted_block: str | None):
    """The block to picture and, per group, one run's histograms of it: the group's first
    completed seed with a readable histograms.csv (a corrupt one: a warning, next seed)."""
    from . import load

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
    block = _block(hists, wanted_block)
    hists = {g: (d, h[h["tag"].str.startswith(f"act/{block}/")]) for g, (d, h) in hists.items()}
    return block, {g: v for g, v in hists.items() if not v[1].empty}


def _facts(runs, skipped, axes, baseline, args) -> list[str]:
    counts = runs["status"].value_counts()
    status = ", ".join(f"{counts[s]} {s}" for s in ("completed", "diverged", "failed", "interrupted") if s in counts)
    targets = sorted(runs["target_acc"].dropna().unique())
    target = ", ".join(f"{t:g}" for t in targets) or "not recorded"
    facts = [f"{len(runs)} runs ({status})" + (f", {len(skipped)} directories skipped" if skipped else ""),
             f"grouped by: {', '.join(a.removesuffix('.name') for a in axes) or '(nothing varies: one group)'}",
             f"baseline: {baseline}",
             f"target accuracy (steps/seconds to target): {target}",
             f"intervals: 95% percentile bootstrap, {args.resamples} resamples, seed {args.seed}; "
             f"means over completed runs only"]
    return facts
