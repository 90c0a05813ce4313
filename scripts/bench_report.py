"""How long ``normbench report`` takes on many runs: writes N hand-made run directories
(summary.json, a metrics.csv of a few hundred rows, histograms.csv, .hydra/) in groups
of seeds, then times the real command on them in a subprocess, and prints the figure.

    python scripts/bench_report.py                    # 300 runs: 20 groups of 15 seeds
    python scripts/bench_report.py --runs 600 --groups 40 --keep /tmp/many
    python scripts/bench_report.py --runs 1000 --keys 100 --no-pictures   # hostile: 100 more keys that differ

``--keys K`` gives every run K more config keys whose values differ between runs (as a
hostile or careless set of summaries might), so the report groups by K + 2 keys; the
report's cost should grow about linearly in K (it grew as K squared before).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from report_fixtures import write_run, write_sweep  # noqa: E402


def make_runs(root: Path, runs: int, groups: int, steps: int, keys: int = 0) -> Path:
    sweep = write_sweep(root / "outputs" / "multirun" / "bench" / "2026-11-23" / "12-00-00")
    norms = ("bn", "ln", "none")
    for i in range(runs):
        g = i % groups
        norm, depth = norms[g % 3], 2 + g // 3
        seed = i // groups
        extra = {f"extra_{k}": (g * (k + 1)) % 7 for k in range(keys)}  # differ between groups, not seeds
        write_run(sweep / f"norm={norm},model.depth={depth},seed={seed}", norm=norm, seed=seed,
                  final_val_acc=0.8 + 0.01 * g + 0.002 * (seed % 7), steps_to_target=100 + g if seed % 4 else None,
                  seconds_to_target=1.0 + 0.1 * g, final_train_loss=0.3 - 0.005 * g, steps=steps, log_every=10,
                  histograms=True, **{"model.depth": depth}, **extra)
    return sweep


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--groups", type=int, default=20)
    p.add_argument("--steps", type=int, default=500, help="training steps per run; metrics.csv gets "
                                                          "7 rows per 10 steps (default 500: 350 rows)")
    p.add_argument("--keys", type=int, default=0, help="config keys added to every run whose values differ "
                                                          "between groups (default 0)")
    p.add_argument("--no-pictures", action="store_true", help="time normbench report --no-pictures")
    p.add_argument("--keep", type=Path, help="write the runs here and keep them (default: a temporary directory)")
    args = p.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="normbench-bench-report-"))
    try:
        t0 = time.perf_counter()
        sweep = make_runs(root, args.runs, args.groups, args.steps, args.keys)
        made = time.perf_counter() - t0
        command = [str(Path(sys.executable).with_name("normbench")), "report", str(sweep),
                   *(["--no-pictures"] if args.no_pictures else [])]
        t0 = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=root)
        took = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        rows = sum(1 for _ in (sweep.rglob("metrics.csv")))
        print(f"{args.runs} runs in {args.groups} groups ({rows} metrics.csv files, {args.steps // 10 * 7} rows "
              f"each{f', {args.keys} more config keys that differ' if args.keys else ''}), written in {made:.1f} s")
        print(f"normbench report{' --no-pictures' if args.no_pictures else ''} (whole process: imports, reading, "
              f"table, {'' if args.no_pictures else 'pictures, '}page): {took:.2f} s")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
