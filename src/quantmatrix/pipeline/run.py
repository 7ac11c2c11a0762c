"""Run a study, phase after phase: ladder, evaluate, timing, determinism, memory, divergence,
long context, score; resumable.

The run log is the single source of truth: a unit of work whose row is already in the log is
never done again (``resume.py``), so re-running the same command resumes where a crash or kill
stopped it. The study and its run folder come in; rows go out; nothing here reads an analysis.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from quantmatrix.backends import registry
from quantmatrix.backends.base import Backend
from quantmatrix.config import ModelSpec, Study
from quantmatrix.manifest import prepare_run_dir, record_environment, record_sources
from quantmatrix.models.ladder import Variant
from quantmatrix.models.sources import default_cache, sha256_file
from quantmatrix.pipeline.adaptive import evaluate_in_rounds
from quantmatrix.pipeline.determinism import run_determinism_phase
from quantmatrix.pipeline.divergence import run_divergence_phase
from quantmatrix.pipeline.evaluate import BackendFactory, EvalLogs, evaluate_all
from quantmatrix.pipeline.ladder import build_variants
from quantmatrix.pipeline.long_context import (
    ModelOpener,
    check_corpus,
    default_opener,
    run_long_context_phase,
)
from quantmatrix.pipeline.memory import run_memory_phase
from quantmatrix.pipeline.resume import logged_keys
from quantmatrix.pipeline.score import Scorer, score_run
from quantmatrix.pipeline.timing import run_timing_phase
from quantmatrix.progress import SILENT, Reporter
from quantmatrix.runlog import SAMPLES, VARIANTS, AppendLog, SampleRow, VariantRow, load_rows
from quantmatrix.runlog.lock import hold_run_dir
from quantmatrix.tasks.plan import plan_samples


@dataclass(frozen=True)
class RunOptions:
    out: Path
    cache: Path = field(default_factory=default_cache)
    force_new: bool = False


@dataclass
class RunOutcome:
    out: Path
    evaluated: int = 0
    skipped: int = 0
    scored: int = 0
    timed: int = 0  # single-stream timing rows written (pipeline/timing.py)
    failed_variants: list[str] = field(default_factory=list)
    rechecked: int = 0  # determinism rows written (pipeline/determinism.py)
    memory_rows: int = 0  # memory vs context rows written (pipeline/memory.py)
    memory_failed: list[str] = field(default_factory=list)  # one line per failed measurement
    long_context: int = 0  # long-context token KL rows written (pipeline/long_context.py)


def default_backend(variant: Variant, spec: ModelSpec, study: Study) -> Backend:
    """The backend registered under the model's ``backend`` name (see backends/registry.py)."""
    return registry.create(spec.backend, variant, spec, study)


def _uses_engine(study: Study) -> bool:
    return any(m.backend == "llamacpp" for m in study.models)


def new_session() -> str:
    """An id for one ``run_study`` call, written into its variants rows (their key, with the
    variant: a variant resumed in a later session gets a row of its own)."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"


def run_study(
    study: Study,
    options: RunOptions,
    backend_factory: BackendFactory = default_backend,
    scorer: Scorer | None = None,
    progress: Reporter = SILENT,
    opener: ModelOpener = default_opener,
) -> RunOutcome:
    """Build, evaluate, log and score the whole study; resume from what the log already holds.

    ``scorer`` replaces the generation scorer (tests pass a fast one); by default the models
    named in the study's ``scoring`` section are loaded, and only if there is anything to score.
    ``opener`` opens a variant for the long-context probe's next-token rows (tests pass
    scripted ones; by default llama.cpp, or the fake backend's scripted rows).
    """
    with hold_run_dir(options.out, create=True):
        return _run_study(study, options, backend_factory, scorer, progress, opener)


def _run_study(
    study: Study,
    options: RunOptions,
    backend_factory: BackendFactory,
    scorer: Scorer | None,
    progress: Reporter,
    opener: ModelOpener,
) -> RunOutcome:
    out = options.out
    manifest = prepare_run_dir(study, out, options.force_new)
    record_environment(out, manifest, options.cache, _uses_engine(study))
    samples = plan_samples(study)
    check_corpus(study)
    sources, variants = build_variants(study, options.cache, progress)
    digests = [(v, sha256_file(v.path, options.cache) if v.path else None) for _, v in variants]
    record_sources(out, manifest, sources, digests)
    # workers (the ray executor's, maybe on other hosts) check their file against this
    variants = [(s, replace(v, sha256=d)) for (s, _), (v, d) in zip(variants, digests, strict=True)]
    done = logged_keys(out, SampleRow, manifest)
    measured = {r.variant for r in load_rows(out, VariantRow, manifest).rows}
    config, session = manifest["config_hash"], new_session()
    with AppendLog(out / SAMPLES, config) as log, AppendLog(out / VARIANTS, config) as vlog:
        logs = EvalLogs(log, vlog, session)
        if study.sampling.mode == "adaptive":
            evaluated = evaluate_in_rounds(
                study, variants, samples, (out, manifest), logs, backend_factory, progress
            )
        else:
            evaluated = evaluate_all(
                study, variants, samples, done, measured, logs, backend_factory, progress
            )
    failed = evaluated.failed_variants
    answered = [(s, v) for s, v in variants if v.id not in failed]
    timed = run_timing_phase(study, out, answered, samples, backend_factory, session, progress)
    checked = run_determinism_phase(
        study, out, answered, samples, backend_factory, session, progress
    )
    memory = run_memory_phase(study, out, variants, session, progress)
    run_divergence_phase(study, out, [v for _, v in variants], progress)
    long_rows = run_long_context_phase(study, out, variants, opener, progress)
    scored = score_run(out, progress, scorer)
    for also in (timed.failed_variants, checked.failed_variants):
        failed += [v for v in also if v not in failed]
    outcome = RunOutcome(out, evaluated.evaluated, evaluated.skipped, scored, timed.rows, failed)
    return replace(outcome, rechecked=checked.rows, memory_rows=memory.rows,
                   memory_failed=memory.failed, long_context=long_rows)  # fmt: skip
