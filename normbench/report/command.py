"""``normbench report [PATH ...] [options]``: its options, and the order of the work.

Everything is read and checked before anything is written: bad input leaves no files.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ..errors import UsageError, disk_problem
from ..files import refuse_links, writing
from .metrics import METRICS

OUTPUTS = Path("outputs")
EPILOG = """\
writes to the output directory:
  summary.csv   the table, one column per number (counts; mean, std, t-interval of each result,
                or geometric mean, geometric sd and interval on the log scale; the comparison
                with the baseline with its interval, p-values, verdicts, seeds needed)
  summary.md    the same table as Markdown, mean ± std [95% CI] in one cell
  runs.csv      one row per run: directory, status, group settings, seed, results
  *.png         the pictures: curves, gradient norms, distribution, activations
  report.html   the table, every picture and every run on one page, self-contained

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
                description="Compare runs across seeds: one row per configuration group with the mean, standard "
                            "deviation and 95% t-interval of each result over the completed seeds (losses, steps "
                            "and times: the geometric mean, on the log scale), counts of diverged/failed/interrupted "
                            "runs, the comparison with a baseline group (Welch's interval at equal seed counts, "
                            "Banerjee's conservative one at unequal counts, or paired) with its p-value, "
                            "Holm-adjusted p-value and verdicts (conditional where runs diverged, incomplete where "
                            "runs failed), a rough figure of the seeds a difference that does not resolve would "
                            "need, pictures, and one self-contained report.html.")
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
    p.add_argument("--paired", action="store_true",
                   help="compare a group with the baseline seed by seed (a paired t-interval of the per-seed "
                        "differences) where both hold the same seeds; default: Welch's interval (Banerjee's where the "
                        "seed counts differ)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output directory; default: <PATH>/report (with several PATHs: their common "
                        "parent's report/)")
    p.add_argument("--x", choices=("steps", "samples", "epochs"), metavar="AXIS",
                   help="the curves' x axis: steps (optimizer updates), samples (training samples seen) or epochs "
                        "(samples seen / training split); default: samples when the batch size varies between the "
                        "runs, else steps")
    p.add_argument("--no-pictures", action="store_true",
                   help="write the tables and the page without pictures (much faster over many runs)")
    p.add_argument("--block", metavar="NAME",
                   help="the block whose activations are pictured before and after its norm layer; "
                        "default: block2 when recorded, else the middle block")
    return p


def _default_out(paths: list[Path]) -> Path:
    if len(paths) == 1:
        return paths[0] / "report"
    return Path(os.path.commonpath([p.resolve() for p in paths])) / "report"


def _check(args) -> None:
    args.paths = [p.expanduser() for p in args.paths]  # --out=~/x reaches normbench unexpanded
    args.out = args.out.expanduser() if args.out is not None else None
    if args.metric not in METRICS:
        raise UsageError(f"--metric {args.metric}: not a result normbench records; allowed: {', '.join(METRICS)}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a directory; allowed: a directory (made if missing)")


def _make_out(out: Path) -> None:
    """The report directory, made if missing: never a symlink, nor holding one (or a FIFO)
    where the report writes (normbench never writes through one)."""
    if out.is_symlink():
        raise UsageError(f"--out {out}: a symlink (to {os.readlink(out)}); allowed: a directory (normbench never "
                         f"writes a report through a symlink)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        e.filename = e.filename or str(out)
        raise UsageError(f"--out {out}: cannot make this directory ({disk_problem(e) or e.strerror}); allowed: a "
                         f"directory you can write to") from e
    refuse_links(out, "report directory")


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    _check(args)
    # pandas: only once the options are checked; `report --help` and a refused option stay light
    from . import load, table
    from .facts import facts, warn

    paths = args.paths or [load.latest_sweep(OUTPUTS)]
    loaded = load.load(paths)
    warn(loaded)
    runs = loaded.runs
    if runs.empty:
        raise UsageError(f"PATH {' '.join(map(str, paths))}: none of its {len(loaded.skipped)} run directories "
                         f"could be read (see the warnings); allowed: directories made by normbench train")
    by = [k.strip() for k in args.by.split(",") if k.strip()] if args.by is not None else None
    axes = table.resolve_axes(runs, loaded.config_keys, by)
    runs["group"] = table.group_labels(runs, axes)
    summary = table.summarize(runs, axes, args.metric, args.baseline, args.paired)
    # pandas: only once the options are checked; `report --help` and a refused option stay light
    from .pictures import draw, prepare

    # reads histograms.csv: a bad --block is refused before anything is written
    prepared = prepare(runs, args.block) if not args.no_pictures or args.block else None
    # pandas: only once the options are checked; `report --help` and a refused option stay light
    from .xaxis import choose, positions

    x = choose(runs, args.x)
    positions(loaded.metrics, runs, x)  # a run without what --x needs is refused before anything is written
    out = args.out or _default_out(paths)
    _make_out(out)
    pooled = table.pooled(runs, loaded.config_keys, axes)
    with writing(out):  # a full disk is named: no space left on <device> writing <out>
        return _write(out, args, argv, loaded, axes, summary, facts(loaded, axes, summary, args.paired, pooled),
                      lambda: [] if args.no_pictures else draw(prepared, loaded, summary, axes, args.metric, out,
                                                               x))


def _write(out, args, argv, loaded, axes, summary, facts_, pictures) -> int:
    # pandas: only once the options are checked; `report --help` and a refused option stay light
    from . import load, page
    from .table import short
    from .text import answer, markdown, readable, write_csv

    runs = loaded.runs
    write_csv(summary.table, out / "summary.csv")
    md = readable(summary, axes, args.metric)
    (out / "summary.md").write_text("\n".join(f"- {f}" for f in facts_) + "\n\n" + markdown(md))
    keys = [f"config.{k}" for k in dict.fromkeys([*axes, "seed"]) if f"config.{k}" in runs]
    per_run = runs[["run_dir", "status", "group", *keys, *[c for c in load.NUMBERS if c in runs], "error",
                    "overrides"]]
    write_csv(per_run.rename(columns={k: short(k.removeprefix("config.")) for k in keys}),
              out / "runs.csv")
    drawn = pictures()
    command = "normbench report " + " ".join(shlex.quote(a) for a in argv)
    html_path = page.write(out, title=f"normbench report: {METRICS[args.metric].label}", command=command.strip(),
                           tables=answer(md, summary, axes, args.metric),
                           baseline_row=list(summary.table["group"]).index(summary.baseline), facts=facts_,
                           pictures=drawn, loaded=loaded, metric=args.metric)
    compact = readable(summary, axes, args.metric, compact=True)
    print("\n".join(facts_))
    print(compact.to_string(index=False))
    print(f"table: {load.shown(out / 'summary.md')} (every result), {load.shown(out / 'summary.csv')}")
    print(f"report: {load.shown(html_path)}")
    sys.stdout.flush()
    return 0
