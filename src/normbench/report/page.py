"""report.html: the table and every picture on one self-contained page (images embedded
as base64 data: URIs, styles inline, no scripts, nothing fetched), so it opens from disk
in any browser with no server."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from .plots import Picture

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.baseline td { background: #fff8e0; }
figure { margin: 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""


def _table_html(frame: pd.DataFrame, baseline_row: int | None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cls = ' class="baseline"' if i == baseline_row else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>")
    return f'<table id="summary">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>"


def _figure(picture: Picture, out: Path) -> str:
    title = html.escape(picture.title)
    caption = html.escape(picture.caption)
    if not picture.drawn:
        return f'<section class="skipped"><h3>{title}</h3><p class="note">{caption}</p></section>'
    data = base64.b64encode((out / picture.file).read_bytes()).decode("ascii")
    return (f'<figure><h3>{title}</h3><img src="data:image/png;base64,{data}" alt="{title}">'
            f"<figcaption>{caption}</figcaption></figure>")


def write(out: Path, *, title: str, command: str, readable: pd.DataFrame, baseline_row: int | None,
          facts: list[str], pictures: list[Picture], skipped: list[tuple[str, str]]) -> Path:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><code>{html.escape(command)}</code></p>",
        "<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>",
        "<h2>Summary</h2>",
        "<p class=\"note\">One row per configuration group, best first. Mean ± standard deviation "
        "[95% bootstrap interval] over the completed runs; diverged, failed and interrupted runs are counted, "
        "not averaged in. The same numbers are in summary.csv (one column per number) and summary.md.</p>",
        _table_html(readable, baseline_row),
        "<h2>Pictures</h2>",
        *[_figure(p, out) for p in pictures],
    ]
    if skipped:
        parts += ["<h2>Skipped directories</h2>",
                  "<ul>" + "".join(f"<li><code>{html.escape(d)}</code>: {html.escape(w)}</li>"
                                   for d, w in skipped) + "</ul>"]
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
