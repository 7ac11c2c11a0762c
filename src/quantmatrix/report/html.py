"""A self-contained ``report.html``: the decision sections with the plots inlined as data URIs.

No scripts, fonts or stylesheets are fetched: the file opens offline, anywhere. Laid out for
a desktop and a phone alike (a viewport tag; wide tables scroll inside their own box, so the
page never scrolls sideways).
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from quantmatrix.decision.model import Decision
from quantmatrix.report.decision_md import PLOT_TITLES, Block, decision_blocks
from quantmatrix.runlog.writes import write_text_atomic

CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: 0.5em 0 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left;
         overflow-wrap: normal; }
td:first-child { white-space: nowrap; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
h1 { font-size: 1.6em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
ul.answer > li { margin-bottom: 0.6em; }
@media (max-width: 600px) {
  body { margin: 1em auto; padding: 0 0.6em; font-size: 15px; }
  h1 { font-size: 1.3em; }
  ul { padding-left: 1.2em; }
  table { font-size: 0.8em; }
}
""".strip()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(b: Block) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in b.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>\n" for row in b.rows
    )
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}'
        "</tbody>\n</table></div>"
    )


def _labelled_list(b: Block) -> str:
    out = ['<ul class="answer">']
    for label, line, subs in zip(b.headers, b.items, b.rows, strict=True):
        inner = "".join(f"<li>{escape(sub)}</li>" for sub in subs)
        nested = f"<ul>{inner}</ul>" if subs else ""
        out.append(f"<li><strong>{escape(label)}</strong>: {escape(line)}{nested}</li>")
    return "\n".join([*out, "</ul>"])


def block_html(b: Block) -> str:
    """One block as HTML; an image block's ``items[0]`` is already a data URI."""
    if b.kind in ("h2", "h3"):
        return f"<{b.kind}>{escape(b.text)}</{b.kind}>"
    if b.kind == "ul":
        return "<ul>\n" + "".join(f"<li>{escape(i)}</li>\n" for i in b.items) + "</ul>"
    if b.kind == "ul2":
        return _labelled_list(b)
    if b.kind == "table":
        return _table(b)
    if b.kind == "img":
        alt = escape(PLOT_TITLES.get(b.text, b.text))
        return (
            f'<p><img class="plot" id="plot-{escape(b.text)}" alt="{alt}" src="{b.items[0]}"></p>'
        )
    return f"<p>{escape(b.text)}</p>"


def render_html(decision: Decision, plots: dict[str, bytes]) -> str:
    """The whole page; ``plots`` maps plot name -> PNG bytes (embedded, in that order)."""
    uris = {name: data_uri(png) for name, png in plots.items()}
    title = f"quantmatrix decision report: {decision.study or 'study'}"
    body = "\n".join(block_html(b) for b in decision_blocks(decision, uris))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def write_html(path: Path, decision: Decision, plots: dict[str, Path]) -> Path:
    """Write ``report.html`` with the PNGs at ``plots`` read and inlined; returns its path."""
    pngs = {name: p.read_bytes() for name, p in plots.items()}
    write_text_atomic(path, render_html(decision, pngs))
    return path
