"""``normbench report``: the table's numbers against each run's own files, intervals,
baselines, skipped directories, bad input, a real sweep end to end, and the page in a
headless Chromium."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import HERE, fifo, run_in_process
from normbench.cli import main
from report_fixtures import write_histograms, write_run, write_sweep

PICTURES = ["val_acc.png", "train_loss.png", "grad_norms.png", "final_val_acc_per_seed.png", "activations.png"]


@pytest.fixture
def report(monkeypatch, capsys, tmp_path):
    """``normbench report <args>`` in this process, from ``cwd`` (default tmp_path):
    (exit code, stdout, stderr)."""
    def run(*args: str, cwd: Path | None = None):
        monkeypatch.chdir(cwd or tmp_path)
        code = main(["report", *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def summaries(root: Path) -> pd.DataFrame:
    """Each run's summary.json, read here without the report's code."""
    rows = []
    for path in sorted(root.rglob("summary.json")):
        s = json.loads(path.read_text())
        rows.append({"dir": path.parent, "status": s["status"], "norm": s["config"]["norm"]["name"],
                     "seed": s["config"]["seed"], "batch_size": s["config"]["batch_size"], **{k: s.get(k) for k in (
                         "final_val_acc", "best_val_acc", "steps_to_target", "seconds_to_target",
                         "final_train_loss", "train_eval_gap")}})
    return pd.DataFrame(rows).astype({k: float for k in ("final_val_acc", "best_val_acc", "steps_to_target",
                                                         "seconds_to_target", "final_train_loss",
                                                         "train_eval_gap")})


def t_interval(values):
    """The textbook t-interval of the mean, computed here with scipy."""
    from scipy import stats

    values = np.asarray(values, float)
    return stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))


@pytest.fixture
def mixed_sweep(tmp_path) -> Path:
    """Two groups: bn (4 completed, one diverged, one failed) and none (3 completed, one
    interrupted); steps to target reached by some runs only."""
    sweep = write_sweep(tmp_path / "outputs" / "multirun" / "2026-11-23" / "10-00-00")
    bn = [(0.97, 0.98, 120, 1.2, 0.05, -0.01), (0.95, 0.97, 180, 1.9, 0.07, 0.0),
          (0.96, 0.96, None, None, 0.06, -0.02), (0.99, 0.99, 100, 1.0, 0.04, 0.01)]
    for seed, (acc, best, steps, secs, loss, gap) in enumerate(bn):
        write_run(sweep / str(seed), norm="bn", seed=seed, final_val_acc=acc, best_val_acc=best,
                  steps_to_target=steps, seconds_to_target=secs, final_train_loss=loss, train_eval_gap=gap,
                  histograms=True)
    write_run(sweep / "4", norm="bn", seed=4, status="diverged", final_val_acc=0.1, final_train_loss=2.3)
    write_run(sweep / "5", norm="bn", seed=5, status="failed", final_val_acc=None, final_train_loss=None)
    for seed, acc in enumerate([0.88, 0.90, 0.86]):
        write_run(sweep / str(6 + seed), norm="none", seed=seed, final_val_acc=acc, final_train_loss=0.4,
                  train_eval_gap=0.0, histograms=True)
    write_run(sweep / "9", norm="none", seed=3, status="interrupted", final_val_acc=0.5, final_train_loss=1.0)
    return sweep


def test_table_numbers_equal_those_computed_from_each_runs_files(report, mixed_sweep):
    code, out, err = report(mixed_sweep)
    assert code == 0, err
    assert err == ""
    table = pd.read_csv(mixed_sweep / "report" / "summary.csv").set_index("norm")
    runs = summaries(mixed_sweep)
    assert list(table.index) == ["bn", "none"]  # sorted by final val acc, best first
    for norm, row in table.iterrows():
        mine = runs[runs.norm == norm]
        done = mine[mine.status == "completed"]
        assert row["runs"] == len(mine) and row["completed"] == len(done)
        assert row["values"] == row["seeds"] == done["final_val_acc"].notna().sum()
        for status in ("diverged", "failed", "interrupted"):
            assert row[status] == (mine.status == status).sum()
        for key, label, log in (("final_val_acc", "final val acc", False), ("best_val_acc", "best val acc", False),
                                ("final_train_loss", "final train loss", True),
                                ("train_eval_gap", "train-eval gap", False),
                                ("steps_to_target", "steps to target (runs reaching it)", True),
                                ("seconds_to_target", "seconds to target (runs reaching it)", True)):
            values = done[key].dropna().to_numpy()  # diverged, failed, interrupted never averaged in
            # losses, steps and seconds: the geometric mean and its interval, on the log scale
            center, spread = ("geometric mean", "geometric sd") if log else ("mean", "std")
            shown = np.exp if log else (lambda v: v)
            values = np.log(values) if log else values
            if len(values) == 0:  # no run reached the target: no mean, said so in the column name
                assert np.isnan(row[f"{label} {center}"]) and np.isnan(row[f"{label} CI low"]), key
                continue
            assert row[f"{label} {center}"] == pytest.approx(shown(values.mean()), abs=1e-12), key
            assert row[f"{label} {spread}"] == pytest.approx(shown(values.std(ddof=1)), abs=1e-12), key
            if len(values) < 2 or values.std() == 0:  # no interval from one value, or from values that agree
                assert np.isnan(row[f"{label} CI low"]) and np.isnan(row[f"{label} CI high"]), key
                continue
            lo, hi = t_interval(values)
            assert row[f"{label} CI low"] == pytest.approx(shown(lo), abs=1e-12), key
            assert row[f"{label} CI high"] == pytest.approx(shown(hi), abs=1e-12), key
        assert row["reached target"] == done["steps_to_target"].notna().sum()
    assert table.loc["bn", "final val acc mean"] == pytest.approx(np.mean([0.97, 0.95, 0.96, 0.99]))
    assert table.loc["bn", "steps to target (runs reaching it) geometric mean"] == pytest.approx(
        (120 * 180 * 100) ** (1 / 3))
    assert table.loc["none", "reached target"] == 0
    assert np.isnan(table.loc["none", "steps to target (runs reaching it) geometric mean"])
    # baseline norm=none (the default when it is one group): the difference of the means
    assert table.loc["none", "Δ CI excludes 0"] == "baseline"
    diff = np.mean([0.97, 0.95, 0.96, 0.99]) - np.mean([0.88, 0.90, 0.86])
    assert table.loc["bn", "Δ final val acc vs baseline"] == pytest.approx(diff)
    # bn lost a run to divergence and one to failure, the baseline one to an interruption: said in the verdict
    assert table.loc["bn", "Δ CI low"] > 0 and table.loc["bn", "Δ CI excludes 0"] == "yes (conditional, incomplete)"
    assert table.loc["bn", "verdicts rest on"] == ("conditional: 4 of 5 completed; incomplete: 1 failed, "
                                                    "baseline 1 interrupted")
    assert table.loc["bn", "method"] == "Banerjee"  # 4 values against 3
    # runs.csv: one row per run, the summary's own numbers
    per_run = pd.read_csv(mixed_sweep / "report" / "runs.csv")
    assert len(per_run) == len(runs) == 10
    merged = per_run.assign(dir=[(mixed_sweep.parents[3] / d).resolve() for d in per_run.run_dir]).merge(
        runs.assign(dir=[d.resolve() for d in runs.dir]), on="dir", suffixes=("", "_json"))
    assert len(merged) == 10
    assert (merged.status == merged.status_json).all() and (merged.norm == merged.norm_json).all()
    assert np.allclose(merged.final_val_acc, merged.final_val_acc_json, equal_nan=True)
    assert list(merged.group.unique()) and set(merged.group) == {"norm=bn", "norm=none"}
    # the terminal: the table, then where the page is
    assert "baseline: norm=none" in out and "+0.0875 [" in out  # the difference, signed, 4 decimals
    page = (mixed_sweep / "report" / "report.html").relative_to(mixed_sweep.parents[3])
    assert out.strip().splitlines()[-1] == f"report: {page}"
    md = (mixed_sweep / "report" / "summary.md").read_text()
    assert "| bn | 4 of 6 runs, 4 seeds | 1/1/0 |" in md and "| none | 3 of 4 runs, 3 seeds | 0/0/1 |" in md
    for picture in PICTURES:
        assert (mixed_sweep / "report" / picture).stat().st_size > 1000, picture


def test_the_interval_shrinks_with_more_seeds(report, tmp_path):
    """Seeds with the same spread: 3 of them, then the same values 4 times over (12)."""
    values = [0.90, 0.92, 0.94]
    widths = {}
    for n in (3, 12):
        sweep = write_sweep(tmp_path / f"s{n}")
        for i in range(n):
            write_run(sweep / str(i), seed=i, final_val_acc=values[i % 3])
        code, _, err = report(sweep, "--no-pictures")
        assert code == 0, err
        row = pd.read_csv(sweep / "report" / "summary.csv").iloc[0]
        assert row["final val acc mean"] == pytest.approx(0.92)
        widths[n] = row["final val acc CI high"] - row["final val acc CI low"]
    # t(11) s12 / sqrt(12) against t(2) s3 / sqrt(3): about 0.22 as wide
    s3, s12 = np.std(values, ddof=1), np.std(values * 4, ddof=1)
    assert widths[12] / widths[3] == pytest.approx((2.200985 * s12 / np.sqrt(12)) / (4.302653 * s3 / np.sqrt(3)))


def test_one_seed_has_no_interval_and_the_same_runs_give_the_same_report(report, tmp_path):
    sweep = write_sweep(tmp_path / "s")
    write_run(sweep / "0", norm="bn", final_val_acc=0.95)
    for i in range(3):
        write_run(sweep / f"n{i}", norm="none", seed=i, final_val_acc=0.8 + 0.01 * i)
    code, out, err = report(sweep)
    assert code == 0, err
    first = (sweep / "report" / "summary.csv").read_text()
    table = pd.read_csv(sweep / "report" / "summary.csv").set_index("norm")
    assert table.loc["bn", "final val acc mean"] == 0.95
    for column in ("final val acc std", "final val acc CI low", "final val acc CI high", "Δ CI low", "Δ CI high"):
        assert np.isnan(table.loc["bn", column]), column  # never a fake zero-width interval
    assert pd.isna(table.loc["bn", "Δ CI excludes 0"])
    assert table.loc["bn", "Δ final val acc vs baseline"] == pytest.approx(0.95 - 0.81)
    assert "0.9500 (one run)" in out and "(too few runs)" in out
    assert report(sweep)[0] == 0
    assert (sweep / "report" / "summary.csv").read_text() == first  # the same runs give the same report


def test_baseline_difference_has_the_right_sign_and_says_whether_it_excludes_zero(report, tmp_path):
    sweep = write_sweep(tmp_path / "s")
    accs = {"bn": [0.95, 0.96, 0.955, 0.965, 0.96], "ln": [0.90, 0.91, 0.905, 0.90, 0.91],
            "none": [0.89, 0.93, 0.91, 0.90, 0.92]}
    for norm, values in accs.items():
        for seed, acc in enumerate(values):
            write_run(sweep / f"{norm}{seed}", norm=norm, seed=seed, final_val_acc=acc,
                      final_train_loss={"bn": 0.1, "ln": 0.2, "none": 0.3}[norm] + 0.01 * seed)
    code, out, err = report(sweep, "--baseline", "norm=ln", "--out", tmp_path / "r", "--no-pictures")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "r" / "summary.csv").set_index("norm")
    assert list(table.index) == ["bn", "none", "ln"]  # by mean final val acc, best first
    assert table.loc["bn", "Δ final val acc vs baseline"] == pytest.approx(np.mean(accs["bn"]) - np.mean(accs["ln"]))
    assert table.loc["bn", "Δ CI low"] > 0 and table.loc["bn", "Δ CI excludes 0"] == "yes"
    assert table.loc["none", "Δ CI low"] < 0 < table.loc["none", "Δ CI high"]
    assert table.loc["none", "Δ CI excludes 0"] == "no"  # 0.91 against 0.905: seed noise
    assert table.loc["ln", "Δ CI excludes 0"] == "baseline"
    assert "baseline: norm=ln" in out
    # a worse group: negative difference; a loss is sorted lowest first
    code, out, err = report(sweep, "--baseline", "norm=bn", "--metric", "final_train_loss", "--out", tmp_path / "l")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "l" / "summary.csv").set_index("norm")
    assert list(table.index) == ["bn", "ln", "none"]
    # a loss is compared as a ratio of geometric means, on the log scale
    losses = {norm: np.array([base + 0.01 * seed for seed in range(5)]) for norm, base in (("bn", 0.1), ("none", 0.3))}
    ratio = np.exp(np.log(losses["none"]).mean() - np.log(losses["bn"]).mean())
    assert table.loc["none", "ratio final train loss vs baseline (geometric means)"] == pytest.approx(ratio)
    assert table.loc["none", "ratio CI low"] > 1 and table.loc["none", "ratio CI excludes 1"] == "yes"
    assert "ratio final train loss vs baseline (geometric means) [95% CI]" in out and f"×{ratio:.3f} [" in out
    assert (tmp_path / "l" / "final_train_loss_per_seed.png").exists()
    assert not list((tmp_path / "r").glob("*.png")) and "<img" not in (tmp_path / "r" / "report.html").read_text()


def test_a_count_of_zero_keeps_its_metric_on_the_linear_scale_and_the_report_says_so(report, tmp_path):
    """Steps to target are compared as a ratio of geometric means, but a run that met the
    target at step 0 has no logarithm: the metric stays linear, said in the header."""
    sweep = write_sweep(tmp_path / "s")
    for seed, (bn, none) in enumerate([(0, 200), (40, 240), (60, 180)]):
        write_run(sweep / f"bn{seed}", norm="bn", seed=seed, steps_to_target=bn)
        write_run(sweep / f"none{seed}", norm="none", seed=seed, steps_to_target=none)
    code, out, err = report(sweep, "--metric", "steps_to_target", "--no-pictures")
    assert code == 0, err
    table = pd.read_csv(sweep / "report" / "summary.csv").set_index("norm")
    assert table.loc["bn", "steps to target (runs reaching it) mean"] == pytest.approx(100 / 3)
    assert table.loc["bn", "Δ steps to target (runs reaching it) vs baseline"] == pytest.approx(100 / 3 - 620 / 3)
    assert "because a completed run has a value of 0 or below: steps_to_target" in out
    code, out, err = report(sweep, "--metric", "final_train_loss", "--no-pictures", "--out", tmp_path / "loss")
    assert "ratio final train loss vs baseline (geometric means)" in pd.read_csv(tmp_path / "loss" / "summary.csv")


def test_groups_come_from_the_config_that_varies_not_from_directory_names(report, tmp_path):
    """Readable job names (the sweeps issue) and experiment folders: only the configs count."""
    sweep = write_sweep(tmp_path / "outputs" / "multirun" / "my_exp" / "2026-11-23" / "10-00-00")
    for norm in ("bn", "none"):
        for placement in ("pre", "post"):
            for seed in (0, 1):
                # the directory names lie on purpose
                write_run(sweep / f"norm=ln,placement=x,seed={seed + 7}" / norm / placement, norm=norm, seed=seed,
                          placement=placement, final_val_acc=0.9 + 0.01 * seed)
    code, out, err = report(sweep, "--baseline", "norm=none placement=pre", "--no-pictures")
    assert code == 0, err
    table = pd.read_csv(sweep / "report" / "summary.csv")
    # placement cannot change a network without a norm: norm=none is one group of two seeds
    assert sorted(table.group) == ["norm=bn placement=post", "norm=bn placement=pre", "norm=none"]
    assert (table["completed"] == 2).all() and "grouped by: norm, placement" in out
    code, out, err = report(sweep, "--by", "placement", "--out", tmp_path / "p", "--no-pictures")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "p" / "summary.csv")
    assert sorted(table.group) == ["placement=n/a", "placement=post", "placement=pre"]
    assert (table["completed"] == 2).all()
    code, out, err = report(sweep, "--by", "model.depth,norm", "--out", tmp_path / "d", "--no-pictures")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "d" / "summary.csv").set_index("group")
    assert sorted(table.index) == ["model.depth=3 norm=bn", "model.depth=3 norm=none"]
    # placement not grouped on: bn's four values come from two seeds, and the table says so
    assert table.loc["model.depth=3 norm=bn", ["values", "seeds"]].tolist() == [4, 2]
    assert "4 of 4 runs, 2 seeds" in out


def test_a_key_left_out_of_by_is_pooled_said_and_counted_by_seeds(report, tmp_path):
    """--by norm over two placements: each seed's runs are averaged first, so n is 2 seeds,
    not 4 runs; the terminal and the page say which key was pooled."""
    from scipy import stats

    sweep = write_sweep(tmp_path / "s")
    accs = {("bn", "pre", 0): 0.95, ("bn", "post", 0): 0.97, ("bn", "pre", 1): 0.96, ("bn", "post", 1): 0.99}
    for (norm, placement, seed), acc in accs.items():
        write_run(sweep / f"{norm}{placement}{seed}", norm=norm, placement=placement, seed=seed, final_val_acc=acc)
    for seed, acc in ((0, 0.90), (1, 0.92)):
        write_run(sweep / f"none{seed}", norm="none", seed=seed, final_val_acc=acc)
    code, out, err = report(sweep, "--by", "norm", "--no-pictures")
    assert code == 0, err
    table = pd.read_csv(sweep / "report" / "summary.csv").set_index("norm")
    seed_means = [np.mean([accs["bn", p, seed] for p in ("pre", "post")]) for seed in (0, 1)]  # 0.96, 0.975
    assert table.loc["bn", ["runs", "values", "seeds"]].tolist() == [4, 4, 2]
    assert table.loc["bn", "final val acc mean"] == pytest.approx(np.mean(seed_means))
    assert table.loc["bn", "final val acc std"] == pytest.approx(np.std(seed_means, ddof=1))
    expected = stats.ttest_ind(seed_means, [0.90, 0.92], equal_var=False)  # n = 2 seeds a group
    assert table.loc["bn", "p"] == pytest.approx(expected.pvalue)
    lo, hi = t_interval(seed_means)
    assert (table.loc["bn", "final val acc CI low"], table.loc["bn", "final val acc CI high"]) == pytest.approx(
        (lo, min(hi, 1.0)))
    said = "pooled: placement varies within the groups (not grouped on): each group's runs of one seed are averaged"
    assert said in out and "--by norm,placement compares them apart" in out
    assert said in html.unescape((sweep / "report" / "report.html").read_text())
    code, out, _ = report(sweep, "--out", tmp_path / "apart", "--no-pictures")  # grouped by both: nothing pooled
    assert "grouped by: norm, placement" in out and "pooled:" not in out


def test_without_a_path_it_reports_the_newest_sweep_under_outputs(report, tmp_path):
    old = write_sweep(tmp_path / "outputs" / "multirun" / "2026-11-24" / "09-00-00")  # newer name, older file
    new = write_sweep(tmp_path / "outputs" / "multirun" / "exp" / "2026-11-23" / "08-00-00")
    write_run(old / "0", final_val_acc=0.5)
    write_run(new / "0", final_val_acc=0.7)
    os.utime(old / "multirun.yaml", (1_000_000, 1_000_000))
    code, out, err = report(cwd=tmp_path)
    assert code == 0, err
    assert (new / "report" / "report.html").exists() and not (old / "report").exists()
    assert "0.7000 (one run)" in out


@pytest.mark.parametrize("damage, why", [
    ("corrupt_summary", "corrupt summary.json (JSONDecodeError"),
    ("truncated_summary", "corrupt summary.json (JSONDecodeError"),
    ("no_metrics", "incomplete: no metrics.csv for a run whose status is completed"),
    ("no_summary", "incomplete: no summary.json"),
    ("not_a_summary", "unknown layout: summary.json is not a normbench summary (no status)"),
    ("unknown_status", "unknown layout: status 'running' in summary.json"),
    ("other_metrics_layout", "unknown layout: metrics.csv has columns time, loss"),
    ("binary_metrics", "corrupt metrics.csv"),
    ("bad_step", "corrupt metrics.csv: a step that is not a number"),
    ("fifo_metrics", "unknown layout: metrics.csv is a FIFO, not a regular file"),
    ("huge_metrics", "unknown layout: metrics.csv is larger than 1 MB"),
])
def test_a_run_that_cannot_be_read_is_skipped_with_one_warning(report, tmp_path, monkeypatch, damage, why):
    sweep = write_sweep(tmp_path / "s")
    for seed in range(3):
        write_run(sweep / str(seed), seed=seed, final_val_acc=0.9 + 0.01 * seed)
    bad = write_run(sweep / "bad", seed=3, final_val_acc=0.0)
    if damage == "corrupt_summary":
        (bad / "summary.json").write_text("{not json")
    elif damage == "truncated_summary":
        (bad / "summary.json").write_text((bad / "summary.json").read_text()[:200])
    elif damage == "no_metrics":
        (bad / "metrics.csv").unlink()
    elif damage == "no_summary":
        (bad / "summary.json").unlink()
    elif damage == "not_a_summary":
        (bad / "summary.json").write_text('{"accuracy": 1.0}')
    elif damage == "unknown_status":
        s = json.loads((bad / "summary.json").read_text())
        (bad / "summary.json").write_text(json.dumps({**s, "status": "running"}))
    elif damage == "other_metrics_layout":
        (bad / "metrics.csv").write_text("time,loss\n1,2\n")
    elif damage == "bad_step":
        with open(bad / "metrics.csv", "a") as f:
            f.write("ten,1,train/loss,0.5,0.0\n")
    elif damage == "binary_metrics":
        (bad / "metrics.csv").write_bytes(b"\x00\xff\xfe" * 100)
    elif damage == "fifo_metrics":  # report used to wait on it for ever
        (bad / "metrics.csv").unlink()
        fifo(bad / "metrics.csv")
    elif damage == "huge_metrics":  # the bound, made small here (1 GB in use): the file is read no further
        monkeypatch.setattr("normbench.report.load.MAX_CSV_BYTES", 2**20)
        with open(bad / "metrics.csv", "a") as f:
            f.write("10,1,train/loss,0.5,0.0\n" * 50_000)
    code, out, err = report(sweep)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"normbench: warning: skipped {bad.relative_to(tmp_path)}: {why}"), lines[0]
    table = pd.read_csv(sweep / "report" / "summary.csv")
    assert table["runs"].sum() == 3 and table["final val acc mean"][0] == pytest.approx(0.91)
    page = html.unescape((sweep / "report" / "report.html").read_text())
    assert "Skipped directories" in page and why.split(" (")[0] in page


def test_pictures_without_data_are_left_out_with_a_note(report, tmp_path):
    sweep = write_sweep(tmp_path / "s")
    for seed in range(2):
        write_run(sweep / str(seed), seed=seed, layers=(), metrics=True, histograms=False)
    (sweep / "report").mkdir()
    (sweep / "report" / "activations.png").write_bytes(b"stale")  # from an earlier report
    code, _, err = report(sweep)
    assert code == 0, err
    page = (sweep / "report" / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 3  # val acc, train loss, distribution
    assert "Not drawn: no completed run recorded grad_norm/&lt;layer&gt;" in page
    assert "Not drawn: no completed run recorded activation histograms" in page
    assert not (sweep / "report" / "activations.png").exists() and not (sweep / "report" / "grad_norms.png").exists()


def test_a_corrupt_histograms_file_costs_only_its_picture(report, tmp_path):
    sweep = write_sweep(tmp_path / "s")
    for seed in range(2):
        write_run(sweep / str(seed), seed=seed, histograms=True)
    (sweep / "0" / "histograms.csv").write_text("step,epoch,tag,left,right,count\n0,0,act/block2/pre_norm,a,b,c\n")
    code, _, err = report(sweep)
    assert code == 0
    assert err.strip().splitlines() == ["normbench: warning: left s/0 out of the activation picture: corrupt "
                                        "histograms.csv: a step, bin edge or count that is not a number"]
    assert pd.read_csv(sweep / "report" / "summary.csv")["completed"].tolist() == [2]
    page = (sweep / "report" / "report.html").read_text()
    assert "Not drawn" not in page and "its first completed seed with readable histograms" in page  # seed 1


def test_the_activation_picture_uses_the_block_asked_for(report, tmp_path):
    sweep = write_sweep(tmp_path / "s")
    write_run(sweep / "0", histograms=False)
    write_histograms(sweep / "0", 0, blocks=("block1", "block3"))
    code, _, err = report(sweep)
    assert code == 0, err
    assert "the norm layer of block1" in (sweep / "report" / "report.html").read_text()  # the middle of 1 and 3
    code, _, err = report(sweep, "--block", "block3")
    assert code == 0, err
    assert "act/block3/pre_norm" in (sweep / "report" / "report.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "PATH nowhere: no such file or directory; allowed: "),
    (["empty"], "PATH empty: no run directories under it (no summary.json found); allowed: "),
    (["s", "--by", "colour"], "--by colour: not a config key of these runs; allowed: "),
    (["s", "--metric", "accuracy"], "--metric accuracy: not a result normbench records; allowed: final_val_acc, "),
    (["s", "--baseline", "norm=gn"], "--baseline norm=gn: matches no group; allowed: one of norm=bn placement=post; "),
    (["s", "--baseline", "norm=bn"], "--baseline norm=bn: matches 2 groups (norm=bn placement=post; norm=bn "),
    (["s", "--baseline", "dropout=0"], "--baseline dropout=0: dropout is not a grouping key; allowed: norm, placement"),
    (["s", "--baseline", "bn"], "--baseline bn: not key=value; allowed: "),
    (["s", "--block", "block9"], "--block block9: no activation histograms of it in these runs; allowed: block1, "),
    (["s", "--out", "afile"], "--out afile: exists and is not a directory; allowed: a directory (made if missing)"),
    (["s", "--colour", "red"], "unrecognized arguments: --colour red; allowed: see normbench report --help"),
    (["s", "--paired=yes"], "argument --paired: ignored explicit argument 'yes'; allowed: "),
    (["all_bad"], "PATH all_bad: none of its 1 run directories could be read (see the warnings); allowed: "),
    ([], "PATH (none given): no sweep under outputs/ (no directory there holds multirun.yaml); allowed: "),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(report, tmp_path, args, message):
    sweep = write_sweep(tmp_path / "s")
    for norm in ("bn", "none"):
        for placement in ("pre", "post"):
            write_run(sweep / f"{norm}{placement}", norm=norm, placement=placement, histograms=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("")
    write_run(tmp_path / "all_bad" / "0")
    (tmp_path / "all_bad" / "0" / "summary.json").write_text("{")
    code, out, err = report(*args)
    lines = err.strip().splitlines()
    assert code == 2
    if args == ["all_bad"]:
        assert lines[0].startswith("normbench: warning: skipped all_bad/0: corrupt summary.json")
        lines = lines[1:]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"normbench: error: {message}"), lines[0]
    assert out == ""
    assert not list(tmp_path.rglob("report")), "nothing is written for bad input"


def test_help_lists_the_options(report):
    code, out, _ = report("--help")
    assert code == 0
    for option in ("--by", "--metric", "--baseline", "--out", "--block", "--paired", "report.html", "runs.csv"):
        assert option in out
    assert "95% t-interval" in out and "%%" not in out  # the description is printed as written


def test_the_command_line_imports_neither_pandas_nor_matplotlib():
    """Start-up cost: only ``normbench report``'s work loads them (its --help and its option
    checks do not)."""
    code = ("import sys, normbench.cli, normbench.errors, normbench.report.command; "
            "sys.exit(any(m in sys.modules for m in ('pandas', 'matplotlib', 'scipy')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# off the happy path, through the real command: ties, diverged runs, unequal seed counts


def _table_and_rows(proc, sweep: Path, key: str = "norm") -> tuple[pd.DataFrame, dict[str, str]]:
    """summary.csv by group, and each group's line of the terminal table."""
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(sweep / "report" / "summary.csv").set_index(key)
    lines = proc.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines[lines.index(next(x for x in lines if x.startswith(key))) + 1:]
            if line.split() and line.split()[0] in set(table.index)}
    return table, rows


def test_seeds_that_tie_get_no_interval_no_p_value_and_no_yes(tmp_path):
    """Validation accuracy is a count: five seeds at 350/360 against five at 349/360."""
    sweep = write_sweep(tmp_path / "s")
    for seed in range(5):
        write_run(sweep / f"bn{seed}", norm="bn", seed=seed, final_val_acc=350 / 360)
        write_run(sweep / f"none{seed}", norm="none", seed=seed, final_val_acc=349 / 360)
        write_run(sweep / f"ln{seed}", norm="ln", seed=seed, final_val_acc=0.95 + 0.005 * seed)
    write_run(sweep / "gn0", norm="gn", seed=0, final_val_acc=0.96)
    proc = run_in_process("report", str(sweep), "--no-pictures", cwd=tmp_path)
    table, rows = _table_and_rows(proc, sweep)
    for column in ("Δ CI low", "Δ CI high", "p", "p (Holm)", "Δ CI excludes 0", "Δ excludes 0 after Holm",
                   "final val acc CI low"):
        assert pd.isna(table.loc["bn", column]), column
    assert table.loc["bn", "no interval because"] == "seeds agree" and table.loc["bn", "final val acc std"] == 0
    assert table.loc["bn", "Δ final val acc vs baseline"] == pytest.approx(1 / 360)
    assert "+0.0028 (seeds agree: no interval)" in rows["bn"] and "yes" not in rows["bn"]
    assert table.loc["ln", "Δ CI excludes 0"] == "no"  # the tied baseline against seeds that differ: an interval
    assert table.loc["gn", "no interval because"] == "too few runs" and "(too few runs)" in rows["gn"]
    # Holm counted the one comparison that had a p-value
    assert "p Holm-adjusted over 1 comparison (of 3: those with a p-value)" in proc.stdout
    assert table.loc["ln", "p (Holm)"] == pytest.approx(table.loc["ln", "p"])
    # against a baseline of one run, seeds that agree are not the reason: the baseline has too few
    proc = run_in_process("report", str(sweep), "--no-pictures", "--baseline", "norm=gn", cwd=tmp_path)
    table, rows = _table_and_rows(proc, sweep)
    assert table.loc["bn", "no interval because"] == "too few runs" and "(too few runs)" in rows["bn"]


def test_diverged_runs_and_unequal_seed_counts_are_part_of_the_answer(tmp_path):
    """ln completed 2 of 5 runs (3 diverged), bn ran 2 seeds, gn lost a value and a run;
    the baseline completed all 5."""
    from scipy import stats as scipy_stats

    sweep = write_sweep(tmp_path / "s")
    base = [0.90, 0.92, 0.89, 0.91, 0.90]
    for seed, acc in enumerate(base):
        write_run(sweep / f"none{seed}", norm="none", seed=seed, final_val_acc=acc)
    for seed in range(5):  # its two survivors are far ahead: the interval excludes 0
        write_run(sweep / f"ln{seed}", norm="ln", seed=seed, status="completed" if seed < 2 else "diverged",
                  final_val_acc=[0.95, 0.951][seed] if seed < 2 else 0.1)
    for seed, acc in enumerate([0.93, 0.94]):
        write_run(sweep / f"bn{seed}", norm="bn", seed=seed, final_val_acc=acc)
    for seed, acc in enumerate([0.90, 0.91, None, 0.92]):  # a completed run without the number
        write_run(sweep / f"gn{seed}", norm="gn", seed=seed, final_val_acc=acc)
    write_run(sweep / "gn4", norm="gn", seed=4, status="failed", final_val_acc=None)
    proc = run_in_process("report", str(sweep), "--no-pictures", cwd=tmp_path)
    table, rows = _table_and_rows(proc, sweep)
    # the seeds column: values that entered the mean out of the group's runs, and their seeds
    assert [table.loc[g, ["values", "runs", "seeds"]].tolist() for g in ("ln", "bn", "gn", "none")] == [
        [2, 5, 2], [2, 2, 2], [3, 5, 3], [5, 5, 5]]
    assert "2 of 5 runs, 2 seeds" in rows["ln"] and "3 of 5 runs, 3 seeds" in rows["gn"]
    # ln's two survivors resolve, but the verdict is never an unqualified yes
    assert table.loc["ln", "Δ CI low"] > 0
    assert table.loc["ln", "Δ CI excludes 0"] == table.loc["ln", "Δ excludes 0 after Holm"] == "yes (conditional)"
    assert table.loc["ln", "verdicts rest on"] == "conditional: 2 of 5 completed"
    assert "yes (conditional)" in rows["ln"] and "conditional: 2 of 5 completed" in rows["ln"]
    # and how often it diverged, on its own: Fisher's exact test against the baseline's 0 of 5
    assert table.loc["ln", "diverged p (Fisher)"] == pytest.approx(1 / 6)
    assert "3 of 5 vs 0 of 5, p 0.167" in rows["ln"]
    assert table.loc["gn", "verdicts rest on"] == "conditional: 3 of 4 with a value; incomplete: 1 failed"
    # 2 seeds against 5: Banerjee's interval, each group's variance with its own t quantile
    bn, none = np.array([0.93, 0.94]), np.array(base)
    half = np.sqrt(scipy_stats.t.ppf(0.975, 1) ** 2 * bn.var(ddof=1) / 2
                   + scipy_stats.t.ppf(0.975, 4) ** 2 * none.var(ddof=1) / 5)
    d = bn.mean() - none.mean()
    assert table.loc["bn", "method"] == "Banerjee" and pd.isna(table.loc["bn", "verdicts rest on"])  # all counted
    assert (table.loc["bn", "Δ CI low"], table.loc["bn", "Δ CI high"]) == (pytest.approx(d - half),
                                                                            pytest.approx(d + half))
    assert table.loc["bn", "Δ CI excludes 0"] == "no" and "2 of 2 runs, 2 seeds" in rows["bn"]
    assert "Banerjee's (conservative) where they do not" in proc.stdout


# a real sweep through the command (its jobs one after another in this process)


@pytest.fixture(scope="session")  # see conftest: built once, in one worker
def real_sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("real")
    proc = run_in_process("train", "-m", "norm=bn,none", "seed=0,1", "epochs=1", "progress=false", "checkpoint=false",
                          *HERE, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    proc = run_in_process("report", cwd=cwd)
    (sweep,) = [p.parent for p in (cwd / "outputs").rglob("multirun.yaml")]
    return cwd, sweep, proc


@pytest.mark.slow
@pytest.mark.xdist_group("test_report:real_sweep")
def test_a_real_sweep_end_to_end(real_sweep):
    cwd, sweep, proc = real_sweep
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = sweep / "report"
    assert proc.stdout.strip().splitlines()[-1] == f"report: {(out / 'report.html').relative_to(cwd)}"
    table = pd.read_csv(out / "summary.csv").set_index("norm")
    runs = summaries(sweep)
    assert sorted(table.index) == ["bn", "none"] and "grouped by: norm" in proc.stdout
    for norm, row in table.iterrows():
        mine = runs[runs.norm == norm]
        assert row["completed"] == row["values"] == row["seeds"] == 2 and sorted(mine.seed) == [0, 1]
        assert row["final val acc mean"] == pytest.approx(mine.final_val_acc.mean(), abs=1e-12)
        assert row["final val acc std"] == pytest.approx(mine.final_val_acc.std(ddof=1), abs=1e-12)
        assert row["final train loss geometric mean"] == pytest.approx(np.exp(np.log(mine.final_train_loss).mean()),
                                                                        abs=1e-12)
        assert row["best val acc mean"] == pytest.approx(mine.best_val_acc.mean(), abs=1e-12)
    # the curves: the last mean of val/acc per group equals the mean of the runs' metrics.csv
    for d in runs.dir:
        m = pd.read_csv(d / "metrics.csv")
        assert m[m.tag == "val/acc"].value.iloc[-1] == pytest.approx(runs.set_index("dir").loc[d, "final_val_acc"])
    for picture in PICTURES:
        assert (out / picture).stat().st_size > 5000, picture
    page = (out / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == len(PICTURES) and "Not drawn" not in page
    assert "http://" not in page and "https://" not in page and "src=\"data:" in page


def _browser():
    """A headless Chromium driven by Debian's chromedriver, or a skip saying what is missing."""
    required = os.environ.get("NORMBENCH_REQUIRE_BROWSER") == "1"
    missing = [p for p in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not Path(p).exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        reason = f"headless Chromium not available: missing {', '.join(missing)} (apt-get install chromium " \
                 f"chromium-driver)"
        if required:
            pytest.fail(reason + "; NORMBENCH_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    return webdriver, Service


def wide_sweep(root: Path) -> Path:
    """The widest answer a table gives: three grouping keys, a result on the log scale (a
    ratio with its interval), qualified verdicts and what they rest on."""
    sweep = write_sweep(root / "wide")
    for norm in ("bn", "ln", "none"):
        for placement in ("pre", "post"):
            for dropout in (0.0, 0.3):
                for seed in range(3):
                    status = "diverged" if (norm, seed) == ("ln", 2) else "failed" if (norm, seed) == ("bn", 2) \
                        else "completed"
                    write_run(sweep / f"{norm}{placement}{dropout}{seed}", norm=norm, placement=placement,
                              dropout=dropout, seed=seed, status=status, final_val_acc=0.9 + 0.01 * seed,
                              final_train_loss=0.05 * (1 + seed + (norm == "bn")))
    return sweep


def _chromium(webdriver, Service, profile: Path):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--disable-extensions", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    return driver


# where each column of a table ends, from the table's left edge, and how wide the page's content is
COLUMNS = ("const t = document.querySelector(arguments[0]); const left = t.getBoundingClientRect().left;"
           "return [Array.from(t.tHead.rows[0].cells)"
           ".map(c => [c.textContent, c.getBoundingClientRect().right - left]),"
           " t.parentElement.clientWidth, t.parentElement.scrollWidth, window.innerWidth]")


@pytest.mark.slow
@pytest.mark.xdist_group("test_report:real_sweep")
def test_the_page_renders_in_headless_chromium_with_every_image(real_sweep, tmp_path):
    webdriver, Service = _browser()
    _, sweep, proc = real_sweep
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "copy" / "report.html"  # alone in a directory: it needs nothing beside it
    page.parent.mkdir()
    shutil.copy(sweep / "report" / "report.html", page)
    wide = wide_sweep(tmp_path)
    assert main(["report", str(wide), "--metric", "final_train_loss", "--no-pictures"]) == 0
    driver = _chromium(webdriver, Service, tmp_path / "profile")
    try:
        driver.set_window_size(1600, 1000)
        driver.get(page.as_uri())
        # how many lines each cell of the main table takes at 1600 px: its height over one line's
        lines = driver.execute_script(
            "const probe = document.createElement('span'); probe.textContent = 'x';"
            "const cell = document.querySelector('#summary tbody td'); cell.appendChild(probe);"
            "const line = probe.getBoundingClientRect().height; probe.remove();"
            "return Array.from(document.querySelectorAll('#summary tbody td'))"
            ".map(td => (td.getBoundingClientRect().height - 2) / line)")
        links = driver.execute_script(
            "return Array.from(document.querySelectorAll('#runs a')).map(a => a.getAttribute('href'))")
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight,"
            " i.getBoundingClientRect().width, i.src.slice(0, 22)])")
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#summary tbody tr')).map(r => r.cells[0].textContent)")
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        title = driver.title
        # the answer without scrolling sideways, in a 1,400 px wide window: the real sweep's, and the widest
        driver.set_window_size(1400, 1000)
        answers = {}
        for name, url in (("real", page.as_uri()), ("wide", (wide / "report" / "report.html").as_uri())):
            driver.get(url)
            answers[name] = driver.execute_script(COLUMNS, "#summary")
        details = driver.execute_script(COLUMNS, "#details")[0]
    finally:
        driver.quit()
    assert len(images) == len(PICTURES)
    for alt, complete, width, height, shown_width, src in images:
        assert complete and width > 300 and height > 200 and shown_width > 100, alt
        assert src == "data:image/png;base64,", alt
    assert sorted(rows) == ["bn", "none"]
    assert all(name.startswith("data:") for name in resources), resources
    assert lines and max(lines) < 1.9, lines  # no number wraps onto a second line
    assert len(links) == 4 and all(link.startswith("../") and link.endswith("/") for link in links)  # each run
    assert title.startswith("normbench report")
    for name, (columns, box, scrolled, window) in answers.items():
        ends = dict(columns)
        assert window == 1400 and scrolled <= box <= 1400, (name, box, scrolled)  # nothing off to the right
        effect = "Δ final val acc vs baseline [95% CI]" if name == "real" else \
            "ratio final train loss vs baseline (geometric means) [95% CI]"
        for column in ("seeds", effect, "p (Holm)", "after Holm"):
            assert ends[column] <= 1400, (name, column, ends)
        assert list(ends)[-3:] == (["p (Holm)", "after Holm", "verdicts rest on"] if name == "wide" else
                                   [effect, "p (Holm)", "after Holm"]), (name, list(ends))
    # everything else is in the second table, settings first
    assert [c for c, _ in details][:4] == ["norm", "placement", "dropout", "diverged/failed/interrupted"]
    assert {"p", "method", "CI excludes 1", "seeds for 80% power (rough)"} <= {c for c, _ in details}


def test_the_curves_are_the_mean_over_completed_seeds_at_each_step(mixed_sweep, monkeypatch):
    """What the curve pictures draw, against each run's metrics.csv read here."""
    from normbench.report import load, plots
    from normbench.report.xaxis import positions

    monkeypatch.chdir(mixed_sweep)
    loaded = load.load([mixed_sweep])
    done = loaded.runs[loaded.runs.status == "completed"].set_index("run_dir")
    seeds = plots.per_seed(positions(loaded.metrics, loaded.runs, "steps"), done["config.norm.name"],
                           done["config.seed"])
    agg = plots.aggregate(seeds).set_index(["group", "tag", "x"])
    runs = summaries(mixed_sweep)
    for norm in ("bn", "none"):
        mine = runs[(runs.norm == norm) & (runs.status == "completed")]
        wide = pd.concat([pd.read_csv(d / "metrics.csv").pivot_table(index="step", columns="tag", values="value")
                          for d in mine.dir], keys=range(len(mine)), names=["run", "step"])
        acc = wide["val/acc"].groupby("step").agg(["mean", "std", "count"])
        assert np.allclose(agg.loc[(norm, "val/acc"), "mean"], acc["mean"])
        half = agg.loc[(norm, "val/acc"), "hi"] - agg.loc[(norm, "val/acc"), "mean"]
        t = {3: 4.302653, 4: 3.182446}[len(mine)]
        assert np.allclose(half, t * acc["std"] / np.sqrt(acc["count"]))
        loss = np.exp(np.log(wide["train/loss"]).groupby("step").mean())  # geometric: drawn on a log scale
        assert np.allclose(agg.loc[(norm, "train/loss"), "mean"], loss)
    assert not agg.index.get_level_values("tag").isin(["train/acc"]).any()  # only what is drawn is kept


@pytest.mark.slow
def test_batch_sizes_at_scaled_learning_rates_are_compared_by_samples_seen(tmp_path):
    """A batch-size sweep with linear lr scaling: each run records its effective lr and the
    data it saw, and the report draws the curves over samples seen unless asked otherwise."""
    proc = run_in_process("train", "-m", "batch_size=8,32", "steps=40", "lr_scaling=linear", "seed=0,1",
                          "progress=false", "checkpoint=false", "probe_every=0", *HERE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (sweep,) = [p.parent for p in (tmp_path / "outputs").rglob("multirun.yaml")]
    runs = summaries(sweep)
    for d, batch in zip(runs.dir, runs.batch_size):
        s = json.loads((d / "summary.json").read_text())
        assert s["effective_lr"] == pytest.approx(0.05 * batch / 64) and s["steps"] == 40
        assert s["samples_seen"] == 40 * batch and s["epochs_seen"] == pytest.approx(40 * batch / 1437)
        lr = pd.read_csv(d / "metrics.csv").query("tag == 'lr'")["value"]
        assert np.allclose(lr, 0.05 * batch / 64)
    for args, axis in (([], "samples seen"), (["--x", "epochs"], "logged epoch"), (["--x", "steps"], "logged step")):
        proc = run_in_process("report", str(sweep), *args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        page = (sweep / "report" / "report.html").read_text()
        assert f"at each {axis}" in page or f"at each logged number of {axis}" in page, axis


@pytest.mark.slow
def test_the_report_benchmark_script_runs(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_report.py"
    proc = subprocess.run([sys.executable, str(script), "--runs", "6", "--groups", "2", "--steps", "40", "--keys", "3",
                           "--keep", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("6 runs in 2 groups (6 metrics.csv files, 28 rows each, 3 more config keys that "
                                  "differ)")
    assert "normbench report (whole process" in proc.stdout
    assert (next((tmp_path / "runs").rglob("report.html"))).stat().st_size > 10_000


def test_a_report_never_writes_through_a_symlink(report, tmp_path):
    sweep = write_sweep(tmp_path / "s")
    for seed in range(2):
        write_run(sweep / str(seed), seed=seed)
    (tmp_path / "elsewhere").mkdir()
    (sweep / "report").symlink_to(tmp_path / "elsewhere")
    code, out, err = report("s")
    assert code == 2 and err.startswith("normbench: error: --out s/report: a symlink") and out == ""
    assert not any((tmp_path / "elsewhere").iterdir())
    (sweep / "report").unlink()
    (sweep / "report").mkdir()
    (tmp_path / "victim").write_text("not normbench's\n")
    (sweep / "report" / "summary.md").symlink_to(tmp_path / "victim")
    code, out, err = report("s")
    assert code == 2 and err.strip() == ("normbench: error: s/report/summary.md: a symlink (to "
                                         f"{tmp_path / 'victim'}) inside a report directory; allowed: plain files "
                                         "there (normbench never writes through a symlink, or into a FIFO or device, "
                                         "inside a report directory: remove it)")
    assert (tmp_path / "victim").read_text() == "not normbench's\n"


def test_a_metrics_file_that_leads_outside_its_run_is_never_read(report, tmp_path):
    sweep = write_sweep(tmp_path / "s")
    for seed in range(2):
        write_run(sweep / str(seed), seed=seed)
    (tmp_path / "passwd").write_text("root:x:0:0:SECRET\n")  # (a link to /dev/zero: test_files.py, bounded)
    (sweep / "0" / "metrics.csv").unlink()
    (sweep / "0" / "metrics.csv").symlink_to(tmp_path / "passwd")
    code, out, err = report(sweep)
    assert code == 0, err
    assert err.strip().splitlines() == ["normbench: warning: skipped s/0: unknown layout: metrics.csv is a symlink "
                                        "leading outside its directory"]
    assert "SECRET" not in (sweep / "report" / "report.html").read_text()


def test_out_and_paths_may_start_with_the_home_directory(report, tmp_path, monkeypatch):
    sweep = write_sweep(tmp_path / "home" / "s")
    write_run(sweep / "0")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    code, _, err = report("~/s", "--out=~/x", "--no-pictures")  # the shell leaves ~ after = as it is
    assert code == 0, err
    assert (tmp_path / "home" / "x" / "report.html").exists() and not (tmp_path / "~").exists()


def test_grouping_costs_no_more_frame_operations_with_more_differing_keys(tmp_path, monkeypatch):
    """The report is near-linear in the config keys that differ: the number of whole-frame
    operations (each of which copies every column) does not grow with them. One per key made
    it quadratic: 3,000 keys took 118 s. (Counted, not timed.)"""
    from collections import Counter

    from normbench.report import load, table

    counts: Counter = Counter()
    for name in ("set_index", "reset_index", "copy", "insert", "__setitem__", "assign", "merge", "join"):
        def counted(*args, _real=getattr(pd.DataFrame, name), _name=name, **kwargs):
            counts[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(pd.DataFrame, name, counted)

    def cost(keys: int) -> int:
        sweep = write_sweep(tmp_path / f"k{keys}")
        for i in range(8):
            write_run(sweep / str(i), seed=i % 2, steps=20, status="failed" if i == 7 else "completed",
                      **{f"extra_{k}": (i // 2 + k) % 4 for k in range(keys)})  # 4 groups of 2 seeds
        counts.clear()
        loaded = load.load([sweep])
        runs = loaded.runs
        axes = table.resolve_axes(runs, loaded.config_keys, None)
        assert len(axes) == keys
        runs["group"] = table.group_labels(runs, axes)
        table.summarize(runs, axes, "final_val_acc", None)
        return sum(counts.values())

    assert cost(40) == cost(10) > 0
