"""The report's pictures and page read: every axis has tick labels inside its limits and a
label naming its scale, no title overlaps another, bands stay inside what the quantity
can be, colour and line style encode the settings, the per-seed picture marks the
baseline; the page lists the shared settings, the versions and every run."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from normbench.cli import main
from report_fixtures import write_run, write_sweep


@pytest.fixture
def figures(monkeypatch):
    """Every matplotlib figure the report draws, kept (and still saved) for inspection."""
    from normbench.report import style

    kept = {}

    def keep(fig, path):
        kept[Path(path).name] = fig
        fig.savefig(path)

    for module in ("plots", "activations"):
        monkeypatch.setattr(f"normbench.report.{module}.save", keep)
    yield kept
    style.pyplot().close("all")


@pytest.fixture(scope="module")
def two_keys(tmp_path_factory):
    """One report of a sweep over norm x placement (3 seeds), its figures kept:
    (sweep directory, what it printed, {file: figure})."""
    from normbench.report import style

    root = tmp_path_factory.mktemp("two_keys")
    sweep = two_key_sweep(root)
    kept = {}
    with pytest.MonkeyPatch.context() as mp:
        for module in ("plots", "activations"):
            mp.setattr(f"normbench.report.{module}.save", lambda fig, path: (kept.__setitem__(Path(path).name, fig),
                                                                          fig.savefig(path)))
        mp.chdir(root)
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["report", str(sweep)]) == 0
    yield sweep, out.getvalue(), kept
    style.pyplot().close("all")


def two_key_sweep(root: Path, val_samples: int | None = 360) -> Path:
    sweep = write_sweep(root / "outputs" / "multirun" / "2026-11-30" / "10-00-00")
    rng = np.random.default_rng(1)
    for norm in ("bn", "ln", "none"):
        for placement in ("pre", "post"):
            for seed in range(3):
                acc = 0.94 + 0.04 * (norm == "bn") + 0.005 * rng.normal()
                write_run(sweep / f"norm={norm},placement={placement},seed={seed}", norm=norm, seed=seed,
                          placement=placement, final_val_acc=float(acc), histograms=True, val_samples=val_samples,
                          final_train_loss=float(0.05 * (1 + rng.random())))
    return sweep


def report(tmp_path, monkeypatch, capsys, *args):
    monkeypatch.chdir(tmp_path)
    code = main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def axis_problems(fig) -> list[str]:
    """What a reader would miss: an axis without tick labels inside its limits or without a
    label, a title overlapping another title or the panels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    for ax in [a for a in fig.axes if a.get_visible()]:
        for name, axis, limits in (("x", ax.xaxis, ax.get_xlim()), ("y", ax.yaxis, ax.get_ylim())):
            lo, hi = sorted(limits)
            inside = [(loc, label.get_text()) for loc, label in zip(axis.get_majorticklocs(),
                                                                    axis.get_ticklabels(), strict=False)
                      if lo <= loc <= hi]
            if len([t for _, t in inside if t.strip()]) < (1 if name == "x" and ax.get_xticklabels() and
                                                            not ax.get_xlabel().startswith("training") else 2):
                problems.append(f"{ax.get_title()!r}: {name} axis has no tick labels in {lo:g}..{hi:g}")
            if not axis.get_label_text().strip():
                problems.append(f"{ax.get_title()!r}: {name} axis has no label")
            if axis.get_scale() == "log" and "log" not in axis.get_label_text():
                problems.append(f"{ax.get_title()!r}: {name} axis is logarithmic but its label does not say so")
    titles = [a.title for a in fig.axes if a.get_visible() and a.get_title()] + list(fig.texts)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in titles if t.get_text()]
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if box_a.overlaps(box_b):
                problems.append(f"title {a!r} overlaps {b!r}")
    for text in fig.texts:  # the figure's title clears every panel
        for ax in [a for a in fig.axes if a.get_visible()]:
            if text.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)):
                problems.append(f"title {text.get_text()!r} overlaps the panel {ax.get_title()!r}")
    return problems


def test_every_picture_has_tick_labels_axis_labels_and_no_overlapping_titles(two_keys):
    _, _, figures = two_keys
    assert set(figures) == {"val_acc.png", "train_loss.png", "grad_norms.png", "final_val_acc_per_seed.png",
                            "activations.png"}
    for name, fig in figures.items():
        assert axis_problems(fig) == [], name


def test_curves_stay_where_the_data_is_and_encode_the_settings(two_keys):
    _, _, figures = two_keys
    (ax,) = [a for a in figures["val_acc.png"].axes if a.get_visible()]
    lo, hi = ax.get_ylim()
    assert 0 <= lo and hi <= 1  # an accuracy: bands clipped to [0, 1], the axis too
    means = [line.get_ydata() for line in ax.get_lines()]
    assert lo <= min(map(min, means)) and max(map(max, means)) <= hi
    assert hi - lo < 1.2 * (max(map(max, means)) - min(map(min, means))) + 0.01  # the curves, not the widest band
    # colour encodes norm, line style placement: norm=none (placement n/a) is one line
    styles = {(line.get_color(), line.get_linestyle()) for line in ax.get_lines()}
    assert len(ax.get_lines()) == 5 == len(styles)
    assert len({c for c, _ in styles}) == 3 and {s for _, s in styles} == {"-", "--"}
    legend = [t.get_text() for t in figures["val_acc.png"].legends[0].get_texts()]
    assert sorted(legend[:3]) == ["norm=bn", "norm=ln", "norm=none"] and legend[0] == "norm=bn"  # table order
    assert sorted(legend[3:]) == ["placement=post", "placement=pre"]
    (loss_ax,) = [a for a in figures["train_loss.png"].axes if a.get_visible()]
    assert loss_ax.get_yscale() == "log" and len([t for t in loss_ax.get_yticklabels() if t.get_text()]) >= 2
    # the per-seed picture marks the baseline
    seeds = figures["final_val_acc_per_seed.png"].axes[0]
    labels = [t.get_text() for t in seeds.get_xticklabels()]
    assert any(label.startswith("baseline:") and "norm=none" in label for label in labels)
    assert "baseline mean" in [t.get_text() for t in seeds.get_legend().get_texts()]


def test_a_third_key_splits_the_curves_into_panels(tmp_path, monkeypatch, capsys, figures):
    sweep = write_sweep(tmp_path / "s")
    for norm in ("bn", "ln"):
        for placement in ("pre", "post"):
            for dropout in (0.0, 0.3):
                write_run(sweep / f"{norm}{placement}{dropout}", norm=norm, placement=placement, dropout=dropout,
                          final_val_acc=0.9)
    report(tmp_path, monkeypatch, capsys, sweep)
    panels = [a for a in figures["val_acc.png"].axes if a.get_visible()]
    assert [a.get_title() for a in panels] == ["dropout=0.0", "dropout=0.3"]
    assert all(len(a.get_lines()) == 4 for a in panels)
    assert all(axis_problems(f) == [] for f in figures.values())


def test_the_table_says_how_sure_each_difference_is(two_keys, tmp_path, monkeypatch, capsys):
    sweep, out, _ = two_keys
    table = pd.read_csv(sweep / "report" / "summary.csv").set_index("group")
    assert list(table.loc[table["method"].notna(), "method"].unique()) == ["Welch"]
    compared = table[table["Δ CI excludes 0"].isin(["yes", "no"])]
    assert len(compared) == 4 and (compared["p (Holm)"] >= compared["p"]).all()
    assert "p Holm-adjusted over 4 comparisons" in out
    unresolved = compared[compared["Δ excludes 0 after Holm"] == "no"]
    assert unresolved["seeds for 80% power (rough)"].notna().all()
    assert table.loc["norm=bn placement=pre", "Δ excludes 0 after Holm"] == "yes"
    md = (sweep / "report" / "summary.md").read_text()
    d = table.loc["norm=bn placement=pre", "Δ final val acc vs baseline"]
    assert f"+{d * 360:.1f} of 360" in md or f"+{d * 360:.0f} of 360" in md  # the difference in samples
    assert re.search(r"\| ~\d+ per group \|", md)  # a rough planning figure
    report(tmp_path, monkeypatch, capsys, sweep, "--paired", "--out", tmp_path / "paired")  # the same seeds
    assert set(pd.read_csv(tmp_path / "paired" / "summary.csv")["method"].dropna()) == {"paired"}


def test_the_page_lists_shared_settings_versions_and_every_run(tmp_path, monkeypatch, capsys):
    sweep = write_sweep(tmp_path / "s")
    write_run(sweep / "norm=bn,seed=0", final_val_acc=0.95)
    report(tmp_path, monkeypatch, capsys, sweep)
    page = html.unescape((sweep / "report" / "report.html").read_text())
    assert "1 run (1 completed)" in page and "1 runs" not in page and "Runs (1 run)" in page
    assert "model.depth=3" in page and "lr=0.05" in page and "epochs=2" in page  # what every run shares
    assert "normbench 0.1.0, torch 2.14.1" in page
    assert 'href="../norm%3Dbn%2Cseed%3D0/"' in page  # each run's directory, relative to the page
    assert re.search(r"seed%3D0/\">[^<]*</a></td><td>[^<]*</td><td>0</td><td>completed</td>", page)  # its seed
