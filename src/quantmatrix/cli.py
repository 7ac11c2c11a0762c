"""The command line: a thin typer layer over the library (study, report, verify, quantize)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from quantmatrix.backends.base import BackendError
from quantmatrix.cli_decide import register as register_decision_commands
from quantmatrix.config import ConfigError, Study, load_study
from quantmatrix.data.benchmarks import DataError
from quantmatrix.manifest import RunDirError
from quantmatrix.models.gguf_info import GGUFError
from quantmatrix.models.ladder import QuantizeError
from quantmatrix.models.sources import SourceError
from quantmatrix.progress import SILENT, Reporter, RichReporter, console
from quantmatrix.runlog import LogIntegrityError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

USER_ERRORS = (
    ConfigError, DataError, RunDirError, SourceError, GGUFError, QuantizeError, BackendError,
    FileNotFoundError, LogIntegrityError,
)  # fmt: skip
PRESETS = ("demo", "tr125", "tiny", "long")


def fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(lines: list[str]) -> None:
    for line in lines:
        console.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)


@contextmanager
def reporter(quiet: bool) -> Iterator[Reporter]:
    """Progress bars on stderr, or none with ``--quiet``."""
    if quiet:
        yield SILENT
        return
    with RichReporter() as bars:
        yield bars


def preset_study(name: str) -> Study:
    if name not in PRESETS:
        fail(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    with resources.as_file(resources.files("quantmatrix") / "presets" / f"{name}.yaml") as path:
        return load_study(path)


def with_executor(study: Study, kind: str | None, address: str | None) -> Study:
    """The study with the command line's executor choice (kept out of its config hash)."""
    if kind is None and address is None:
        return study
    update: dict[str, str] = {"address": address} if address else {}
    if kind is not None:
        if kind not in ("local", "ray"):
            fail(f"unknown executor {kind!r}; choose local or ray")
        update["kind"] = kind
    elif study.executor.kind == "local":
        update["kind"] = "ray"  # an address means a cluster
    return study.model_copy(update={"executor": study.executor.model_copy(update=update)})


@app.command()
def run(
    study_file: Annotated[Path | None, typer.Argument(help="study YAML")] = None,
    out: Annotated[Path, typer.Option("--out", help="run folder (resumed if it exists)")] = Path(
        "runs/latest"
    ),
    demo: Annotated[bool, typer.Option("--demo", help="the built-in default study")] = False,
    preset: Annotated[
        str | None, typer.Option(help="a built-in study: demo, tr125, tiny, long")
    ] = None,
    force_new: Annotated[bool, typer.Option("--force-new", help="move a different run aside")] = (
        False
    ),
    cache: Annotated[Path | None, typer.Option(help="model and ladder cache folder")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
    executor: Annotated[
        str | None, typer.Option(help="local or ray; default: the study's executor, else local")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="ray: auto, HOST:PORT or ray://HOST:10001")
    ] = None,
) -> None:
    """Build missing variants, evaluate them, write the run log, then the report."""
    from quantmatrix.pipeline import RunOptions, run_study
    from quantmatrix.report.render import write_report

    try:
        if study_file is not None and (demo or preset):
            fail("give a study file or --demo/--preset, not both")
        if study_file is None and not (demo or preset):
            fail("give a study file, or --demo for the built-in default study")
        study = load_study(study_file) if study_file else preset_study(preset or "demo")
        study = with_executor(study, executor, address)
        options = RunOptions(out=out, force_new=force_new)
        if cache is not None:
            options = RunOptions(out=out, cache=cache, force_new=force_new)
        with reporter(quiet) as progress:
            outcome = run_study(study, options, progress=progress)
        report, analysis = write_report(out)
    except USER_ERRORS as exc:
        fail(str(exc))
        return
    from quantmatrix.report.summary import headline_text

    warn(list(analysis.log_warnings))
    console.print(headline_text(analysis), highlight=False)
    console.print(
        f"evaluated {outcome.evaluated} samples, reused {outcome.skipped}; report: {report}",
        highlight=False,
    )
    if outcome.failed_variants:
        fail(f"variants that failed: {', '.join(outcome.failed_variants)}", code=1)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run folder")]) -> None:
    """Regenerate report.md and analysis.json from the run log (scoring only unscored rows)."""
    from quantmatrix.pipeline.score import score_run
    from quantmatrix.report.render import write_report

    try:
        with reporter(quiet=False) as progress:
            score_run(run_dir, progress)
        path, analysis = write_report(run_dir)
    except USER_ERRORS as exc:
        fail(str(exc))
    warn(list(analysis.log_warnings))
    console.print(f"report: {path}", highlight=False)


REPAIR_HINT = (
    "quantmatrix verify --repair {} keeps the first row of each key and drops rows of another "
    "run (the old files are kept beside)"
)
REPAIR_LEAVES = (
    "verify --repair leaves rows with a bad SHA-256 or an unknown schema version, and model "
    "files, as they are"
)


@app.command()
def verify(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    repair: Annotated[
        bool, typer.Option("--repair", help="drop duplicated rows and rows of another run")
    ] = False,
) -> None:
    """Re-check every row's SHA-256, one row per key, rows of this run only, the model files."""
    from quantmatrix.verify import check_run, repair_run

    if repair:
        repaired = repair_run(run_dir)
        for fixed in repaired:
            lines = ("line " if len(fixed.removed) == 1 else "lines ") + ", ".join(
                str(n) for n in fixed.removed
            )
            console.print(
                escape(
                    f"{fixed.name}: removed {len(fixed.removed)} row(s) ({lines}); "
                    f"the old file is kept as {fixed.kept_as.name}"
                ),
                highlight=False,
                soft_wrap=True,
            )
        if not repaired:
            console.print("nothing to repair", highlight=False)
    verdict = check_run(run_dir)
    warn(verdict.warnings)
    for line in verdict.problems:
        console.print(f"[red]{escape(line)}[/red]", highlight=False, soft_wrap=True)
    if verdict.problems:
        if verdict.repairable:
            console.print(escape(REPAIR_HINT.format(run_dir)), highlight=False, soft_wrap=True)
        elif repair:
            console.print(REPAIR_LEAVES, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"{run_dir}: all rows and model files check out", highlight=False, soft_wrap=True)


@app.command()
def quantize(
    source: Annotated[Path, typer.Argument(help="a GGUF model file")],
    levels: Annotated[str, typer.Option(help="comma-separated, e.g. Q8_0,Q4_K_M")],
    out: Annotated[Path, typer.Option("--out", help="folder for the built files")],
    threads: Annotated[int | None, typer.Option(help="default: all cores")] = None,
) -> None:
    """Build quant levels of one GGUF file with llama.cpp's quantizer (the ladder alone)."""
    from quantmatrix.models.ladder import build_ladder_files

    try:
        built = build_ladder_files(source, [lv.strip() for lv in levels.split(",")], out, threads)
    except (*USER_ERRORS, ValueError) as exc:
        fail(str(exc))
        return
    for path, info in built:
        console.print(
            f"{path}  {info.file_type}  {info.size_bytes / 1e9:.3f} GB  "
            f"{info.bits_per_weight:.3f} bits/weight",
            highlight=False,
        )


@app.command()
def doctor(
    cache: Annotated[Path | None, typer.Option(help="model and ladder cache folder")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the facts as JSON")] = False,
    no_probe: Annotated[bool, typer.Option("--no-probe", help="skip the engine probe")] = False,
    address: Annotated[
        str | None, typer.Option(help="a Ray cluster to list (default: RAY_ADDRESS when set)")
    ] = None,
) -> None:
    """One screen about this machine's engine and assets, to paste into a bug report."""
    import json

    from quantmatrix.doctor import cluster_facts, collect, render
    from quantmatrix.models.sources import default_cache

    facts = collect(cache or default_cache(), probe=not no_probe)
    cluster = cluster_facts(address)
    if cluster is not None:
        facts["cluster"] = cluster
    text = json.dumps(facts, indent=2) if as_json else render(facts)
    console.print(text, highlight=False, markup=False, soft_wrap=True)


register_decision_commands(app)


def main() -> None:  # pragma: no cover
    sys.exit(app())
