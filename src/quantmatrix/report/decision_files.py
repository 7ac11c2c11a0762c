"""The decision's files in a run folder: ``plots/*.png``, ``report.html`` and its markdown."""

from __future__ import annotations

from pathlib import Path

from quantmatrix.decision.model import Decision
from quantmatrix.report.decision_md import render_answer_md, render_decision_md
from quantmatrix.report.html import write_html
from quantmatrix.report.plots import write_plots


def write_decision_outputs(run_dir: Path, decision: Decision) -> dict[str, str]:
    """Write ``plots/*.png`` and ``report.html`` for ``decision`` (from ``decide``).

    Returns ``{"answer": <the answer section>, "markdown": <the other decision sections>,
    "html": <path>, "plot:<name>": <path>, ...}``;
    the markdown links the plots relative to ``run_dir`` (for ``report.md`` there). Takes the
    decision rather than the analysis so that a report builds it once.
    """
    plots = write_plots(decision, run_dir / "plots")
    rel = {name: path.relative_to(run_dir).as_posix() for name, path in plots.items()}
    html = write_html(run_dir / "report.html", decision, plots)
    out = {
        "answer": render_answer_md(decision),
        "markdown": render_decision_md(decision, rel),
        "html": str(html),
    }
    out.update({f"plot:{name}": str(path) for name, path in plots.items()})
    return out
