"""The command line: a thin typer layer over the library (study, report, verify, quantize)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from quantmatrix.backends.base import BackendError
from quantmatrix.cli_decide import printable
from quantmatrix.cli_decide import register as register_decision_commands
from quantmatrix.config import ConfigError, Study, load_study
from quantmatrix.data.benchmarks import DataError
from quantmatrix.manifest import RunDirError
from quantmatrix.models.gguf_info import GGUFError
from quantmatrix.models.ladder import QuantizeError
from quantmatrix.models.sources import SourceError
from quantmatrix.progress import SILENT, LineReporter, Reporter, RichReporter, console
from quantmatrix.runlog import LogIntegrityError
from quantmatrix.runlog.check import Repaired
from quantmatrix.runlog.lock import RunInUseError, hold_run_dir
from quantmatrix.runlog.writes import WriteFailed


class _App(typer.Typer):
    """The typer app with a last resort: an exception no command turned into its one line is a
    bug; it is reported in one line naming the file its traceback was saved to (exit 70)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:  # the last resort: the tests assert that no case reaches it
            try:
                saved = f"the traceback saved in {save_traceback(exc)}"
            except OSError as why:
                saved = f"this line (its traceback could not be saved: {why.strerror})"
            first = (str(exc).splitlines() or [""])[0][:200]
            what = escape(printable(f"{type(exc).__name__}: {first}"))
            console.print(
                f"[red]error:[/red] internal error ({what}); this is a bug in quantmatrix: "
                f"please report it with {escape(saved)}",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(70)


def save_traceback(exc: BaseException) -> Path:
    """Write ``exc``'s traceback to a file in the temporary folder; its path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = Path(tempfile.gettempdir()) / f"quantmatrix-crash-{stamp}-{os.getpid()}.txt"
    text = "".join(traceback.format_exception(exc))
    path.write_text(f"quantmatrix {' '.join(sys.argv[1:])}\n{text}", encoding="utf-8")
    return path


app = _App(add_completion=False, no_args_is_help=True, help=__doc__)

USER_ERRORS = (
    ConfigError, DataError, RunDirError, SourceError, GGUFError, QuantizeError, BackendError,
    FileNotFoundError, LogIntegrityError, RunInUseError, WriteFailed,
)  # fmt: skip
PRESETS = ("demo", "tr125", "tiny", "kv", "long")


def fail(message: str, code: int = 2) -> None:
    """One line on stderr (a line break inside a value shown as ``\\n``), then exit ``code``."""
    line = escape(printable(message))
    console.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(lines: list[str]) -> None:
    for line in lines:
        text = escape(printable(line))
        console.print(f"[yellow]warning:[/yellow] {text}", highlight=False, soft_wrap=True)


@contextmanager
def reporter(quiet: bool, style: str = "bars") -> Iterator[Reporter]:
    """Progress bars on stderr, plain lines (``--progress lines``), or none with ``--quiet``."""
    if quiet:
        yield SILENT
        return
    if style == "lines":
        yield LineReporter()
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


def opening(study: Study) -> None:
    """The study's sizes and the resolution they give, before anything runs."""
    from quantmatrix.plan import opening_lines
    from quantmatrix.tasks.plan import plan_samples

    for line in opening_lines(study, plan_samples(study)):
        console.print(escape(line), highlight=False, soft_wrap=True)


def with_determinism(study: Study, items: int | None) -> Study:
    """The study with the command line's determinism check (kept out of its config hash)."""
    if items is None:
        return study
    if items < 0:
        fail(f"--check-determinism {items}: give a number of items, 0 or more (0: no check)")
    check = study.determinism.model_copy(update={"items": items})
    return study.model_copy(update={"determinism": check})


@app.command()
def run(
    study_file: Annotated[Path | None, typer.Argument(help="study YAML")] = None,
    out: Annotated[Path, typer.Option("--out", help="run folder (resumed if it exists)")] = Path(
        "runs/latest"
    ),
    demo: Annotated[bool, typer.Option("--demo", help="the built-in default study")] = False,
    preset: Annotated[
        str | None, typer.Option(help="a built-in study: demo, tr125, tiny, kv, long")
    ] = None,
    force_new: Annotated[bool, typer.Option("--force-new", help="move a different run aside")] = (
        False
    ),
    cache: Annotated[Path | None, typer.Option(help="model and ladder cache folder")] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="no progress bars, no opening lines")
    ] = False,
    executor: Annotated[
        str | None, typer.Option(help="local or ray; default: the study's executor, else local")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="ray: auto, HOST:PORT or ray://HOST:10001")
    ] = None,
    check_determinism: Annotated[
        int | None,
        typer.Option(
            "--check-determinism",
            metavar="K",
            help="ask K answered items of each kind per variant again on a fresh backend "
            "(another thread count) and compare them bit for bit",
        ),
    ] = None,
    progress_style: Annotated[
        str,
        typer.Option("--progress", help="bars, or lines: one plain line per phase (for logs)"),
    ] = "bars",
) -> None:
    """Build missing variants, evaluate them, write the run log, then the report."""
    from quantmatrix.pipeline import RunOptions, run_study
    from quantmatrix.report.render import write_report

    try:
        if study_file is not None and (demo or preset):
            fail("give a study file or --demo/--preset, not both")
        if study_file is None and not (demo or preset):
            fail("give a study file, or --demo for the built-in default study")
        if progress_style not in ("bars", "lines"):
            fail(f"unknown --progress {progress_style!r}; choose bars or lines")
        study = load_study(study_file) if study_file else preset_study(preset or "demo")
        study = with_executor(study, executor, address)
        study = with_determinism(study, check_determinism)
        if not quiet:
            opening(study)
        options = RunOptions(out=out, force_new=force_new)
        if cache is not None:
            options = RunOptions(out=out, cache=cache, force_new=force_new)
        taken: list[str] = []
        with hold_run_dir(out, taken, create=True):
            warn(taken)
            with reporter(quiet, progress_style) as progress:
                outcome = run_study(study, options, progress=progress)
                progress.phase("report", 1)
                report, analysis = write_report(out)
                progress.advance()
    except USER_ERRORS as exc:
        fail(str(exc))
        return
    from quantmatrix.decision.build import decide
    from quantmatrix.decision.model import Policy
    from quantmatrix.report.determinism_md import determinism_line
    from quantmatrix.report.summary import terminal_summary

    warn(list(analysis.log_warnings))
    warn([f"memory not measured: {line}" for line in outcome.memory_failed])
    for part in terminal_summary(decide(analysis, Policy()), console.width):  # the report's opening
        console.print(part, highlight=False)
    if (line := determinism_line(analysis)) is not None:
        console.print(line, highlight=False)
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
        taken: list[str] = []
        with hold_run_dir(run_dir, taken):
            warn(taken)
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


def show_repaired(repaired: list[Repaired]) -> None:
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


@app.command()
def verify(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    repair: Annotated[
        bool, typer.Option("--repair", help="drop duplicated rows and rows of another run")
    ] = False,
) -> None:
    """Re-check every row's SHA-256, one row per key, rows of this run only, the model files."""
    from quantmatrix.verify import check_run, repair_run

    try:
        if repair:
            taken: list[str] = []
            with hold_run_dir(run_dir, taken):
                warn(taken)
                show_repaired(repair_run(run_dir))
        verdict = check_run(run_dir)
    except USER_ERRORS as exc:
        fail(str(exc))
        return
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
    determinism: Annotated[
        bool,
        typer.Option(
            "--determinism",
            help="check that greedy decoding repeats bit for bit in fresh contexts and at "
            "another thread count (the engine probe's tiny model)",
        ),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(help="check whether this server (URL) is deterministic at temperature 0"),
    ] = None,
    server_model: Annotated[
        str | None, typer.Option(help="with --server: the model (tag) it serves to ask")
    ] = None,
    server_kind: Annotated[
        str, typer.Option(help="with --server: ollama or openai (OpenAI-compatible)")
    ] = "ollama",
) -> None:
    """One screen about this machine's engine and assets, to paste into a bug report."""
    import json

    from quantmatrix.doctor import (
        cluster_facts,
        collect,
        engine_determinism,
        render,
        server_determinism,
    )
    from quantmatrix.models.sources import default_cache

    if (server is None) != (server_model is None):
        fail("--server and --server-model go together: the server's URL and the model to ask")
    folder = cache or default_cache()
    facts = collect(folder, probe=not no_probe)
    cluster = cluster_facts(address)
    if cluster is not None:
        facts["cluster"] = cluster
    try:
        if determinism:
            facts["determinism"] = engine_determinism(folder)
        if server is not None and server_model is not None:
            facts["server_determinism"] = server_determinism(server_kind, server, server_model)
    except (BackendError, ValueError, RuntimeError) as exc:  # EngineError is a RuntimeError
        fail(str(exc))
    text = json.dumps(facts, indent=2) if as_json else render(facts)
    console.print(text, highlight=False, markup=False, soft_wrap=True)


register_decision_commands(app)


@app.command()
def plan(
    study_file: Annotated[Path | None, typer.Argument(help="study YAML")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="the built-in default study")] = False,
    preset: Annotated[
        str | None, typer.Option(help="a built-in study: demo, tr125, tiny, kv, long")
    ] = None,
    speeds: Annotated[
        Path | None,
        typer.Option(
            help="YAML of speeds by variant or model (variants:), quantizer "
            "(quantize:), scoring (scoring:); they take precedence over measured ones"
        ),
    ] = None,
    no_calibrate: Annotated[
        bool,
        typer.Option("--no-calibrate", help="run nothing: use cached calibrations and --speeds"),
    ] = False,
    recalibrate: Annotated[
        bool,
        typer.Option("--recalibrate", help="measure again what the calibration table holds"),
    ] = False,
    cache: Annotated[Path | None, typer.Option(help="model and ladder cache folder")] = None,
) -> None:
    """Before anything runs: variants, sample counts, downloads, builds, and an ETA from speeds
    measured here (a short calibration, cached) or given with --speeds."""
    from quantmatrix.backends.base import BackendError
    from quantmatrix.models.sources import default_cache
    from quantmatrix.plan import GatherOptions, gather, make_plan, render
    from quantmatrix.tasks.plan import plan_samples

    try:
        if study_file is not None and (demo or preset):
            fail("give a study file or --demo/--preset, not both")
        if study_file is None and not (demo or preset):
            fail("give a study file, or --demo for the built-in default study")
        study = load_study(study_file) if study_file else preset_study(preset or "demo")
        samples = plan_samples(study)
        if no_calibrate and recalibrate:
            fail("give --no-calibrate or --recalibrate, not both")
        options = GatherOptions(cache or default_cache(), not no_calibrate, speeds, recalibrate)
        inputs = gather(study, options, say=lambda line: console.print(escape(line)))
        lines = render(make_plan(study, samples, inputs))
    except (*USER_ERRORS, BackendError) as exc:
        fail(str(exc))
        return
    typer.echo("\n".join(lines))


def main() -> None:  # pragma: no cover
    sys.exit(app())
