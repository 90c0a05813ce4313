"""report.html: the table, every picture and every run on one self-contained page (images
embedded as base64 data: URIs, styles inline, no scripts, nothing fetched), so it opens
from disk in any browser with no server. Every text from a run is HTML-escaped."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from .facts import METHODS, plural, shared_settings
from .plots import Picture
from .metrics import METRICS

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px; padding: 0 1em; color: #222; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { max-width: 14em; }
td { white-space: nowrap; }
td.text { white-space: normal; max-width: 40em; }
td.yes { font-weight: bold; }
#summary { font-size: 0.95em; }
th { background: #f3f3f3; }
tr.baseline td { background: #fff8e0; }
tr.failed td, tr.interrupted td { color: #a00; }
figure { margin: 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""


def _esc(value) -> str:
    return html.escape(str(value))


def _cell(column: str, value) -> str:
    """A table cell: what a verdict rests on wraps; a verdict that resolved is bold."""
    text = str(value)
    cls = ' class="text"' if column == "verdicts rest on" else \
        ' class="yes"' if column == "after Holm" and text.startswith("yes") else ""
    return f"<td{cls}>{_esc(text)}</td>"


def _table_html(frame: pd.DataFrame, baseline_row: int | None, table_id: str = "summary") -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cls = ' class="baseline"' if i == baseline_row else ""
        rows.append(f"<tr{cls}>" + "".join(_cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + "</tr>")
    return (f'<div class="scroll"><table id="{table_id}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody>\n</table></div>")


def _figure(picture: Picture, out: Path) -> str:
    title, caption = _esc(picture.title), _esc(picture.caption)
    if not picture.drawn:
        return f'<section class="skipped"><h3>{title}</h3><p class="note">{caption}</p></section>'
    data = base64.b64encode((out / picture.file).read_bytes()).decode("ascii")
    return (f'<figure><h3>{title}</h3><img src="data:image/png;base64,{data}" alt="{title}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _runs_html(runs: pd.DataFrame, out: Path, metric: str) -> str:
    """Every run: its group, seed, status, result and error, its directory linked relative
    to the page (the page opens from disk; so do the links, while the two stay together)."""
    label = METRICS[metric].label
    rows = []
    for r in runs.sort_values(["group", "run_dir"]).itertuples(index=False):
        target = Path(r.run_dir) if Path(r.run_dir).is_absolute() else Path.cwd() / r.run_dir
        href = quote(Path(os.path.relpath(target, out.resolve())).as_posix()) + "/"
        value = getattr(r, metric)
        seed = "" if pd.isna(r.seed) else int(r.seed)
        rows.append(f'<tr class="{_esc(r.status)}"><td><a href="{_esc(href)}">{_esc(r.run_dir)}</a></td>'
                    f"<td>{_esc(r.group)}</td><td>{_esc(seed)}</td><td>{_esc(r.status)}</td>"
                    f"<td>{'-' if pd.isna(value) else f'{value:.4g}'}</td>"
                    f'<td class="text">{_esc(r.error or "")}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("directory", "group", "seed", "status", _esc(label), "error"))
    return (f'<div class="scroll"><table id="runs"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(rows)
            + "\n</tbody></table></div>")


def write(out: Path, *, title: str, command: str, tables: tuple[pd.DataFrame, pd.DataFrame], baseline_row: int | None,
          facts: list[str], pictures: list[Picture], loaded, metric: str) -> Path:
    """The page: what was compared, the answer (text.answer's first table) where a reader
    looks first, how to read it and its methods, every other result in a second table,
    then the settings, the pictures and every run."""
    runs = loaded.runs.assign(seed=loaded.runs.get("config.seed"))
    runs["error"] = runs["error"].where(runs["error"].notna(), None)
    versions = sorted(set(runs.get("versions", pd.Series(dtype=object)).dropna()))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p><code>{_esc(command)}</code></p>",
        "<ul>" + "".join(f"<li>{_esc(f)}</li>" for f in facts if not f.startswith(METHODS)) + "</ul>",
        "<h2>Summary</h2>",
        _table_html(tables[0], baseline_row),
        "<p class=\"note\">One row per configuration group, best first. Mean ± standard deviation "
        "[95% t-interval] over the completed runs (losses, steps and times: geometric mean ×/÷ geometric standard "
        "deviation, on the log scale); diverged, failed and interrupted runs are counted, not averaged in, and "
        "<i>seeds</i> says how many values entered the mean out of the group's runs, from how many distinct seeds. "
        "The comparison with the baseline (a difference, or a ratio of geometric means) comes with its interval, its "
        "p-value and the p-value after Holm's correction for the comparisons made; a verdict is <i>conditional</i> "
        "where runs diverged (it holds for the runs that survived; how often each group diverged is compared on its "
        "own) and <i>incomplete</i> where runs failed or were interrupted. Where a comparison does not resolve, a "
        "rough figure of the seeds per group a difference of its size would need (in the table below, with every "
        "other result). The same numbers are in summary.csv and summary.md.</p>",
        *[f"<p class=\"note\">{_esc(f)}</p>" for f in facts if f.startswith(METHODS)],
        "<h3>Every result</h3>",
        _table_html(tables[1], baseline_row, "details"),
        "<h2>Settings every run shares</h2>",
        "<p>" + (", ".join(f"<code>{_esc(s)}</code>" for s in shared_settings(runs)) or "none") + "</p>",
        "<p class=\"note\">Versions: " + (_esc("; ".join(versions)) or "not recorded") + "</p>",
        "<h2>Pictures</h2>",
        *[_figure(p, out) for p in pictures],
        f"<h2>Runs ({plural(len(runs), 'run')})</h2>",
        _runs_html(runs, out, metric),
    ]
    if loaded.skipped:
        parts += ["<h2>Skipped directories</h2>",
                  "<ul>" + "".join(f"<li><code>{_esc(d)}</code>: {_esc(w)}</li>" for d, w in loaded.skipped) + "</ul>"]
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
