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
from matplotlib.colors import to_rgba

from normbench.cli import main
from report_fixtures import write_histograms, write_run, write_sweep


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


@pytest.fixture(scope="session")  # see conftest: built once, in one worker
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


@pytest.mark.xdist_group("test_report_pictures:two_keys")
def test_every_picture_has_tick_labels_axis_labels_and_no_overlapping_titles(two_keys):
    _, _, figures = two_keys
    assert set(figures) == {"val_acc.png", "train_loss.png", "grad_norms.png", "final_val_acc_per_seed.png",
                            "activations.png"}
    for name, fig in figures.items():
        assert axis_problems(fig) == [], name


@pytest.mark.xdist_group("test_report_pictures:two_keys")
def test_curves_stay_where_the_data_is_and_encode_the_settings(two_keys):
    _, _, figures = two_keys
    (ax,) = [a for a in figures["val_acc.png"].axes if a.get_visible()]
    lo, hi = ax.get_ylim()
    assert 0 <= lo and hi <= 1  # an accuracy: bands clipped to [0, 1], the axis too
    curves = [line.get_ydata() for line in ax.get_lines()]
    assert lo <= min(map(min, curves)) and max(map(max, curves)) <= hi
    assert hi - lo < 1.2 * (max(map(max, curves)) - min(map(min, curves))) + 0.01  # the curves, not a band
    # 3 seeds: a thick mean and a thin line per seed for each of the 5 groups, no band
    thick = [line for line in ax.get_lines() if line.get_linewidth() > 2]
    assert len(thick) == 5 and len(ax.get_lines()) == 5 * 4 and not ax.collections
    # colour encodes norm, line style placement; norm=none (placement n/a) has a style of its own
    styles = {(line.get_color(), line.get_linestyle()) for line in thick}
    assert len(styles) == 5 and len({c for c, _ in styles}) == 3
    assert {s for _, s in styles} == {"-", "--", ":"}
    legend = [t.get_text() for t in figures["val_acc.png"].legends[0].get_texts()]
    assert sorted(legend[:3]) == ["norm=bn", "norm=ln", "norm=none"] and legend[0] == "norm=bn"  # table order
    assert legend[3:6] == ["placement=post", "placement=pre", "placement=n/a (no effect with that norm)"]
    assert legend[6:] == ["thick: mean over seeds", "thin: one seed"]
    handles = figures["val_acc.png"].legends[0].legend_handles
    none = handles[legend.index("norm=none")].get_color()
    assert {line.get_linestyle() for line in thick if line.get_color() == none} == {":"}  # as the legend says
    assert handles[5].get_linestyle() == ":"
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
    assert all(len([line for line in a.get_lines() if line.get_linewidth() > 2]) == 4 for a in panels)
    assert all(axis_problems(f) == [] for f in figures.values())


@pytest.mark.xdist_group("test_report_pictures:two_keys")
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


def curve_lines(fig, color) -> tuple[list, list]:
    """The thick (mean) and thin (one seed) lines of one colour in a curve picture."""
    (ax,) = [a for a in fig.axes if a.get_visible()]
    mine = [line for line in ax.get_lines() if to_rgba(line.get_color()) == to_rgba(color)]
    return [line for line in mine if line.get_linewidth() > 2], [line for line in mine if line.get_linewidth() < 1]


def test_at_two_seeds_each_seed_is_a_line_and_from_five_a_band(tmp_path, monkeypatch, capsys, figures):
    from normbench.report.style import NORM_COLORS

    sweep = write_sweep(tmp_path / "s")
    for seed in range(2):
        write_run(sweep / f"bn{seed}", norm="bn", seed=seed, final_val_acc=0.95)
    for seed in range(5):
        write_run(sweep / f"none{seed}", norm="none", seed=seed, final_val_acc=0.9)
    report(tmp_path, monkeypatch, capsys, sweep)
    fig = figures["val_acc.png"]
    (ax,) = [a for a in fig.axes if a.get_visible()]
    thick, thin = curve_lines(fig, NORM_COLORS["bn"])
    assert len(thick) == 1 and len(thin) == 2  # 2 seeds: the mean and each seed, no band
    assert not [c for c in ax.collections if to_rgba(c.get_facecolor()[0])[:3] == to_rgba(NORM_COLORS["bn"])[:3]]
    thick, thin = curve_lines(fig, NORM_COLORS["none"])
    assert len(thick) == 1 and thin == []  # 5 seeds: the mean and its band
    (band,) = ax.collections
    assert to_rgba(band.get_facecolor()[0])[:3] == to_rgba(NORM_COLORS["none"])[:3]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[-3:] == ["thick: mean over seeds", "thin: one seed", "shaded: 95% t-interval"]
    page = html.unescape((sweep / "report" / "report.html").read_text())
    assert "Groups with fewer than 5 seeds: each seed a thin line; from 5 seeds: shaded, the 95% t-interval" in page


def test_a_norm_keeps_its_colour_in_every_picture_and_every_report(tmp_path, monkeypatch, capsys, figures):
    from normbench.report.style import NORM_COLORS

    first = write_sweep(tmp_path / "first")  # gn ahead of ln, grouped by norm alone
    for norm, acc in (("gn", 0.95), ("ln", 0.90)):
        for seed in range(2):
            write_run(first / f"{norm}{seed}", norm=norm, seed=seed, final_val_acc=acc + 0.01 * seed)
    second = write_sweep(tmp_path / "second")  # ln ahead, bn_ghost beside bn, two placements
    for norm, name, acc in (("ln", "ln", 0.97), ("gn", "gn", 0.91), ("bn", "bn", 0.94), ("bn", "bn_ghost", 0.93)):
        for placement in ("pre", "post"):
            for seed in range(2):
                write_run(second / f"{name}{placement}{seed}", norm=norm, seed=seed, placement=placement,
                          final_val_acc=acc + 0.01 * seed, **{"norm.name": name})
    seen = {}
    for sweep, by in ((first, "norm"), (second, "placement,norm")):  # norm is not even the first key here
        report(tmp_path, monkeypatch, capsys, sweep, "--by", by)
        for picture in ("val_acc.png", "train_loss.png"):
            handles = figures[picture].legends[0]
            for text, handle in zip(handles.get_texts(), handles.legend_handles, strict=True):
                if text.get_text().startswith("norm="):
                    seen.setdefault(text.get_text(), set()).add(to_rgba(handle.get_color()))
        points = figures["final_val_acc_per_seed.png"].axes[0].collections[0]  # each run in its norm's colour
        norms = {n.split("=")[1] for n in seen}
        assert {tuple(np.round(c[:3], 6)) for c in points.get_facecolors()} <= {
            tuple(np.round(to_rgba(NORM_COLORS[n])[:3], 6)) for n in norms}
    assert seen == {f"norm={n}": {to_rgba(NORM_COLORS[n])} for n in ("gn", "ln", "bn", "bn_ghost")}
    assert len({to_rgba(c) for c in NORM_COLORS.values()}) == len(NORM_COLORS)  # bn_ghost is not bn
    options = {p.stem for p in (Path(__file__).parents[1] / "conf" / "norm").glob("*.yaml")}
    assert options <= set(NORM_COLORS)  # every norm option has its colour


def variance_panels(fig) -> list:
    return [a for a in fig.axes if a.get_visible() and a.get_title().endswith("per-feature variance")]


@pytest.mark.parametrize("log", [True, False])
def test_variances_are_drawn_on_the_scale_they_were_binned_on_with_shared_ranges(tmp_path, monkeypatch, capsys,
                                                                                  figures, log):
    from normbench.report import activations

    sweep = write_sweep(tmp_path / "s")  # variances a decade apart: bn's about 1e-2, none's about 1 to 100
    write_run(sweep / "bn", norm="bn")
    write_histograms(sweep / "bn", 0, variances=((0.01, 0.03), (0.999, 1.0)), log=log, zeros=3 if log else 0)
    write_run(sweep / "none", norm="none")
    write_histograms(sweep / "none", 1, variances=((1, 100), (1, 100)), log=log)
    report(tmp_path, monkeypatch, capsys, sweep)
    panels = variance_panels(figures["activations.png"])
    assert len(panels) == 2 and panels[0].get_xlim() == panels[1].get_xlim()  # one x range for every group
    assert {a.get_xscale() for a in panels} == {"log" if log else "linear"}
    lo, hi = panels[0].get_xlim()
    assert lo <= 0.01 and hi >= 100 and (hi / lo < 1e5 if log else True)
    for ax in panels:  # the same bins everywhere, each histogram's features all counted (on a log axis, but zeros)
        bins = {tuple(np.round(p.get_path().vertices[:, 0], 9)) for p in ax.patches}
        assert len(bins) == 1
        heights = [p.get_path().vertices[:, 1] for p in ax.patches]
        assert all(h.max() > 0 for h in heights)
    bn = next(a for a in panels if a.get_title().startswith("norm=bn"))
    legend = [t.get_text() for t in bn.get_legend().get_texts()]
    assert legend[0] == ("before the norm (3 at variance 0, not drawn)" if log else "before the norm")
    # moving counts onto shared bins keeps every feature, and fills no gap a finer bin would leave empty
    edges, counts = np.geomspace(1, 100, 31), np.full(30, 2.0)
    target = np.geomspace(0.5, 200, 41)
    moved = activations.rebin(edges, counts, target, log=True)
    assert moved.sum() == pytest.approx(60) and (moved[(target[:-1] >= 1) & (target[1:] <= 100)] > 0).all()
    assert activations.rebin(np.array([0.0, 1.0, 2.0]), np.array([4.0, 0.0]), np.linspace(0, 2, 9),
                             log=False).tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
