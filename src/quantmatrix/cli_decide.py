"""Direct answers on the command line: ``recommend``, ``validate`` and ``compare``.

Each reads a run folder (its analysis rebuilt from the run log) or an ``analysis.json`` file
(read back by :func:`quantmatrix.analysis.model.read_analysis`). Register them on the main app
with :func:`register`. Bad input (no run in the folder, an unknown analysis version, an unknown
variant, a malformed memory size) prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from quantmatrix.decision import DecisionError

if TYPE_CHECKING:
    from quantmatrix.analysis.model import Analysis
    from quantmatrix.analysis.paired_runs import RunsAgreement, SignalAgreement
    from quantmatrix.decision.model import CostFacts
    from quantmatrix.runlog import RunLog

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|mib|gb|mb|tb|g|m|t)?\s*$", re.IGNORECASE)
_FACTOR_GB = {
    "": 1.0,
    "g": 1.0,
    "gb": 1.0,
    "m": 1e-3,
    "mb": 1e-3,
    "t": 1e3,
    "tb": 1e3,
    "gib": 2**30 / 1e9,
    "mib": 2**20 / 1e9,
}


def parse_memory_gb(text: str) -> float:
    """'4GB' -> 4.0, '512MB' -> 0.512, '4' -> 4.0 (decimal GB; GiB/MiB converted)."""
    match = _SIZE.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise DecisionError(f"bad memory size {text!r}; write it like 4GB, 512MB or 4")
    return float(match.group(1)) * _FACTOR_GB[(match.group(2) or "").lower()]


def printable(text: str) -> str:
    """``text`` on one line: a character that is not printable (a line or paragraph break, a
    control character) is shown escaped, as ``\\n`` or ``\\x1c``."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {printable(message)}", err=True)
    raise typer.Exit(2)


def _load(source: Path) -> Analysis:
    """The analysis of a run folder (from its log), or of an ``analysis.json`` file."""
    return _load_run(source)[0]


def _load_run(source: Path) -> tuple[Analysis, RunLog | None]:
    """The analysis of a run folder with its log, or of an ``analysis.json`` file (no log)."""
    from quantmatrix.analysis.build import analyze
    from quantmatrix.analysis.model import AnalysisFileError, read_analysis
    from quantmatrix.runlog import RunLog

    if source.is_file():
        try:
            return read_analysis(source), None
        except AnalysisFileError as exc:
            _fail(str(exc))
    try:
        log = RunLog.load(source)
        analysis = analyze(log)
    except (FileNotFoundError, ValueError, KeyError) as exc:  # LogIntegrityError too
        _fail(f"cannot read a run from {source}: {exc}")
    for line in analysis.log_warnings:
        typer.echo(printable(f"warning: {source}: {line}"), err=True)
    return analysis, log


def _cost_line(cost: CostFacts) -> str:
    if cost.usd_per_m is None:
        return f"unknown (no decode speed) at ${cost.cost_per_hour:g}/hour"
    line = f"${cost.usd_per_m:.4f} per 1M generated tokens at ${cost.cost_per_hour:g}/hour"
    if cost.cheaper_x is not None:
        line += (
            f"; {cost.cheaper_x:.2f}x cheaper than {cost.baseline_level} "
            f"({cost.savings_pct:+.1f}% saved)"
        )
    return line


def recommend_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run folder or analysis.json")],
    memory: Annotated[
        str | None, typer.Option("--memory", help="budget: 4GB, 512MB or 4 (GB); default any")
    ] = None,
    model: Annotated[str | None, typer.Option(help="only this model's variants")] = None,
    min_accuracy: Annotated[float | None, typer.Option(help="lowest accuracy, 0-1")] = None,
    max_tier: Annotated[str, typer.Option(help="worst tier allowed")] = "acceptable",
    objective: Annotated[
        str, typer.Option(help="quality, cost, speed, memory or value (accuracy per $)")
    ] = "quality",
    basis: Annotated[
        str, typer.Option(help="certified (worst the data allow) or point (published)")
    ] = "certified",
    conservative: Annotated[
        bool, typer.Option(help="point basis: rank by the CI's lower bound")
    ] = False,
    context: Annotated[
        int | None,
        typer.Option(
            min=1, help="memory at this context length (tokens), from the study's memory phase"
        ),
    ] = None,
) -> None:
    """The best variant that fits a memory budget, with its guarantee, ties and runners-up."""
    from quantmatrix.decision.recommend import recommend
    from quantmatrix.report.answer import ADMITTED, comparison_text

    try:
        gb = None if memory is None else parse_memory_gb(memory)
        if basis not in ("certified", "point"):
            raise DecisionError(f"unknown basis {basis!r}; choose certified or point")
        rec = recommend(
            _load(run_dir), gb, min_accuracy, max_tier, objective, conservative,
            basis="point" if basis == "point" else "certified", model=model, context=context,
        )  # fmt: skip
    except DecisionError as exc:
        _fail(str(exc))
    if rec.best is None:
        typer.echo(rec.reason)
        return
    typer.echo(f"run {rec.best.variant}: {rec.best.why}")
    if rec.best.variant in rec.admitted:
        typer.echo(f"  {ADMITTED}")
    for line in [rec.tie_note, *rec.undecided]:
        if line:
            typer.echo(f"  {line}")
    for pick in rec.runners_up:
        typer.echo(f"  or {pick.variant}: {pick.why}")
    for found in rec.across:
        typer.echo(f"  across models: {comparison_text(found)}")


def validate_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run folder or analysis.json")],
    variant: Annotated[str, typer.Option("--variant", help="model@LEVEL")],
) -> None:
    """Tier, equivalence tests and cost of one variant."""
    from quantmatrix.decision.recommend import validate

    try:
        v = validate(_load(run_dir), variant)
    except DecisionError as exc:
        _fail(str(exc))
    typer.echo(f"{v.variant}: tier {v.tier}; {v.summary}")
    typer.echo(f"certified: {v.certified or 'not computed (no paired items)'}")
    if not v.equivalence:
        typer.echo("equivalence: not computed")
    for row in v.equivalence:
        verdict = "equivalent" if row.equivalent else "not shown equivalent"
        where = f"{row.metric}, {row.margin_label}, {row.design}"
        typer.echo(f"equivalence ({where}): {verdict}")
    typer.echo(f"cost: {_cost_line(v.cost)}")
    typer.echo(f"memory: {v.memory.verdict} ({v.memory.basis} used)")


def _signal_text(s: SignalAgreement) -> str:
    if s.change is None or s.low is None or s.high is None:
        return f"{s.signal} - ({s.n} shared)"
    digits, unit = (1, "pp") if s.unit == "pp" else (3, "")
    return (
        f"{s.signal} {s.change:+.{digits}f}{unit} [{s.low:+.{digits}f}, {s.high:+.{digits}f}] "
        f"on {s.n}"
    )


def paired_lines(paired: RunsAgreement | None) -> list[str]:
    """compare's paired part: per shared variant, the verdict and each signal's interval."""
    if paired is None:
        return [
            "paired check: not done (it needs two run folders: per-item outcomes are not in "
            "analysis.json)"
        ]
    level = f"{100 * (1 - paired.alpha):g}%"
    lines = [f"paired on the shared items, B - A with {level} intervals (accuracy: Tango; "
             "generation metrics: paired t, 0-1 scale):"]  # fmt: skip
    for v in paired.variants:
        signals = "; ".join(_signal_text(s) for s in v.signals)
        lines.append(f"  {v.variant}: {v.verdict} ({signals})")
    if paired.note:
        lines.append(f"  ({paired.note})")
    return lines


def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="first run folder or analysis.json")],
    run_b: Annotated[Path, typer.Argument(help="second run folder or analysis.json")],
    threshold: Annotated[float, typer.Option(help="flag above this (pp or %)")] = 5.0,
    alpha: Annotated[float, typer.Option(help="paired intervals at 1 - alpha")] = 0.05,
) -> None:
    """Two runs side by side: shared variants, the metrics that diverge, and whether each
    shared variant agrees within its paired intervals (run folders)."""
    from quantmatrix.analysis.paired_runs import pair_runs
    from quantmatrix.decision.compare import compare

    if not 0 < alpha < 1:
        _fail(f"--alpha {alpha:g}: give a level between 0 and 1, e.g. 0.05")
    (a, log_a), (b, log_b) = _load_run(run_a), _load_run(run_b)
    paired = None if log_a is None or log_b is None else pair_runs(log_a, log_b, alpha)
    res = compare(a, b, threshold, paired)
    only_a, only_b = ", ".join(res.only_a) or "-", ", ".join(res.only_b) or "-"
    typer.echo(f"{len(res.shared)} shared variant(s); only in A: {only_a}; only in B: {only_b}")
    for line in res.flags or [f"no divergence above {threshold:g} (pp for accuracy, else %)"]:
        typer.echo(line)
    for line in paired_lines(res.paired):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add ``recommend``, ``validate`` and ``compare`` to ``app``."""
    app.command("recommend")(recommend_cmd)
    app.command("validate")(validate_cmd)
    app.command("compare")(compare_cmd)
