"""Run a study: plan the variants, build the missing ones, evaluate, log, resume.

The run log is the single source of truth: a sample already in ``samples.jsonl`` is never asked
again, so re-running the same command resumes where a crash or kill stopped it.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import TaskID

from quantmatrix.backends import registry
from quantmatrix.backends.base import Backend, BackendError, GenerationRequest
from quantmatrix.backends.batching import batch_size_for, group_of, pending_groups
from quantmatrix.config import ModelSpec, Study
from quantmatrix.manifest import prepare_run_dir, record_environment, record_sources
from quantmatrix.models.ladder import Variant, build_level
from quantmatrix.models.sources import ResolvedSource, default_cache, resolve_source, sha256_file
from quantmatrix.progress import console, make_progress
from quantmatrix.runlog import SAMPLES, VARIANTS, AppendLog
from quantmatrix.runlog_check import load_rows
from quantmatrix.scoring.phase import score_run
from quantmatrix.tasks import multiple_choice
from quantmatrix.tasks.base import Sample
from quantmatrix.tasks.plan import plan_samples

BackendFactory = Callable[[Variant, ModelSpec, Study], Backend]

WARMUP_PROMPT = "Reply with the single word: ready"


@dataclass(frozen=True)
class RunOptions:
    out: Path
    cache: Path = field(default_factory=default_cache)
    force_new: bool = False
    show_progress: bool = True


@dataclass
class RunOutcome:
    out: Path
    evaluated: int = 0
    skipped: int = 0
    scored: int = 0
    failed_variants: list[str] = field(default_factory=list)


def default_backend(variant: Variant, spec: ModelSpec, study: Study) -> Backend:
    """The backend registered under the model's ``backend`` name (see backends/registry.py)."""
    return registry.create(spec.backend, variant, spec, study)


def _uses_engine(study: Study) -> bool:
    return any(m.backend == "llamacpp" for m in study.models)


def _threads(study: Study) -> int:
    return study.threads or os.cpu_count() or 1


def build_variants(
    study: Study, cache: Path, show_progress: bool = True
) -> tuple[list[ResolvedSource], list[tuple[ModelSpec, Variant]]]:
    """Resolve every source and build every missing level (cached by source SHA-256 and level)."""
    sources: list[ResolvedSource] = []
    variants: list[tuple[ModelSpec, Variant]] = []
    with make_progress(show_progress) as progress:
        for spec in study.models:
            if spec.backend != "llamacpp":  # the server or the script holds the weights
                variants += [(spec, _fileless_variant(spec, lv)) for lv in spec.ordered_levels]
                continue
            task = progress.add_task(f"ladder {spec.name}", total=len(spec.levels))
            source = resolve_source(spec.name, spec.source, cache)
            sources.append(source)
            for level in spec.ordered_levels:
                progress.update(task, description=f"ladder {spec.name} {level}")
                variants.append((spec, build_level(source, level, cache, _threads(study))))
                progress.advance(task)
    return sources, variants


def _fileless_variant(spec: ModelSpec, level: str) -> Variant:
    where = spec.server_model(level) if spec.backend in ("ollama", "openai") else "fake"
    return Variant(spec.name, level, None, None, where, spec.backend, False)


def _request(sample: Sample, study: Study, index: int) -> GenerationRequest:
    return GenerationRequest(
        key=f"{sample.task}|{sample.item}",
        prompt=sample.prompt,
        max_tokens=sample.max_tokens,
        stop_at_line_end=sample.stop_at_line_end,
        temperature=study.decoding.temperature,
        seed=study.decoding.seed,
        letter_count=sample.letter_count,
        batch_group=group_of(index, study.batch_size),
    )


def _sample_row(variant: Variant, sample: Sample, result: Any) -> dict[str, Any]:
    t = result.timing
    return {
        "kind": "sample",
        "variant": variant.id,
        "model": variant.model,
        "level": variant.level,
        "task": sample.task,
        "item": sample.item,
        "input": {**sample.inputs, "prompt": sample.prompt, "max_tokens": sample.max_tokens},
        "output": result.text,
        "finish_reason": result.finish_reason,
        "scores": multiple_choice.score(result.text, sample.inputs, result.letter_probs)
        if "choices" in sample.inputs
        else {},  # generation rows are scored in a phase of their own (scoring/phase.py)
        "letters": None
        if result.letter_probs is None
        else multiple_choice.letter_stats(result.letter_probs, sample.inputs["gold"]),
        "timing": {
            "prompt_tokens": t.prompt_tokens,
            "generated_tokens": t.generated_tokens,
            "prompt_eval_s": t.prompt_eval_s,
            "decode_s": t.decode_s,
            "decode_tokens": t.decode_tokens,
            "ttft_s": t.ttft_s,
            "wall_s": t.wall_s,
        },
        "error": result.error,
    }


def _warm_up(backend: Backend, study: Study) -> float:
    started = time.perf_counter()
    requests = [
        GenerationRequest(key=f"warmup-{i}", prompt=WARMUP_PROMPT, max_tokens=8)
        for i in range(study.warmup_runs)
    ]
    for _ in backend.generate(requests):
        pass
    return time.perf_counter() - started


def evaluate_variant(
    variant: Variant,
    backend: Backend,
    todo: Sequence[tuple[int, Sample]],
    study: Study,
    samples_log: AppendLog,
    on_sample: Callable[[], None] = lambda: None,
    logged: Callable[[Sample], bool] = lambda s: False,
) -> dict[str, Any]:
    """Ask every (plan index, sample) in ``todo``; each row is durable the moment it is
    written. A ``logged`` sample is asked again only to keep its batch group whole: its result
    is not written twice (backends/batching.py)."""
    if study.decoding.mc_scoring == "letters" and not backend.capabilities.letter_probs:
        raise BackendError(
            f"backend {backend.name!r} gives no option-letter probabilities; set "
            "decoding.mc_scoring to 'generation' or 'both' for this model"
        )
    warmup_s = _warm_up(backend, study)
    native = 0.0
    started = time.perf_counter()
    by_key = {f"{s.task}|{s.item}": s for _, s in todo}
    written = 0
    for result in backend.generate([_request(s, study, i) for i, s in todo]):
        native += result.timing.native_s or 0.0
        if logged(by_key[result.key]):
            continue
        samples_log.append(_sample_row(variant, by_key[result.key], result))
        written += 1
        on_sample()
    eval_wall = time.perf_counter() - started
    memory = backend.memory()
    return {
        "kind": "variant",
        "variant": variant.id,
        "model": variant.model,
        "level": variant.level,
        "file": variant.info.as_dict() if variant.info else None,
        "source_sha256": variant.source_sha256,
        "source_type": variant.source_type,
        "reconstructed": variant.reconstructed,
        "backend": backend.info(),
        "memory": None
        if memory is None
        else {"peak_bytes": memory.peak_bytes, "source": memory.source, **memory.extra},
        "warmup_runs": study.warmup_runs,
        "warmup_s": warmup_s,
        "session_samples": written,
        "session_eval_wall_s": eval_wall,
        "session_native_s": native,
    }


def done_keys(out: Path, manifest: dict[str, Any] | None) -> set[tuple[str, str, str]]:
    """The samples already logged for this run (read as the analysis reads them: a conflicting
    duplicate stops the run with one line, rows of another run do not count as done)."""
    rows = load_rows(out, SAMPLES, manifest).rows
    return {(r["variant"], r["task"], r["item"]) for r in rows}


def new_session() -> str:
    """An id for one ``run_study`` call, written into its variants rows (their key, with the
    variant: a variant resumed in a later session gets a row of its own)."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"


def run_study(
    study: Study,
    options: RunOptions,
    backend_factory: BackendFactory = default_backend,
    scorer: Any = None,
) -> RunOutcome:
    """Build, evaluate, log and score the whole study; resume from what the log already holds.

    ``scorer`` replaces the generation scorer (tests pass a fast one); by default the models
    named in the study's ``scoring`` section are loaded, and only if there is anything to score.
    """
    out = options.out
    manifest = prepare_run_dir(study, out, options.force_new)
    record_environment(out, manifest, options.cache, _uses_engine(study))
    samples = plan_samples(study)
    sources, variants = build_variants(study, options.cache, options.show_progress)
    digests = [(v, sha256_file(v.path, options.cache) if v.path else None) for _, v in variants]
    record_sources(out, manifest, sources, digests)
    done = done_keys(out, manifest)
    measured = {r["variant"] for r in load_rows(out, VARIANTS, manifest).rows}
    outcome = RunOutcome(out)
    session, config = new_session(), manifest["config_hash"]
    with (
        AppendLog(out / SAMPLES, config) as log,
        AppendLog(out / VARIANTS, config) as vlog,
        make_progress(options.show_progress) as progress,
    ):
        for spec, variant in variants:

            def logged(s: Sample, v: str = variant.id) -> bool:
                return (v, s.task, s.item) in done

            asked = pending_groups(samples, logged, batch_size_for(spec, study))
            todo = [s for _, s in asked if not logged(s)]
            outcome.skipped += len(samples) - len(todo)
            if not todo and variant.id in measured:
                continue
            task = progress.add_task(f"eval {variant.id}", total=len(todo))
            try:
                backend = backend_factory(variant, spec, study)
            except BackendError as exc:
                console.print(f"[red]{variant.id}: {exc}[/red]")
                outcome.failed_variants.append(variant.id)
                continue

            def advance(t: TaskID = task) -> None:
                progress.advance(t)

            try:
                row = evaluate_variant(variant, backend, asked, study, log, advance, logged)
            except BackendError as exc:  # rows already written stay; a rerun resumes
                console.print(f"[red]{variant.id}: {exc}[/red]", highlight=False)
                outcome.failed_variants.append(variant.id)
                continue
            finally:
                backend.close()
            vlog.append({**row, "session": session})
            outcome.evaluated += len(todo)
    run_divergence_phase(study, out, variants, options.show_progress)
    outcome.scored = score_run(out, options.show_progress, scorer)
    return outcome


def run_divergence_phase(
    study: Study, out: Path, variants: list[tuple[ModelSpec, Variant]], show_progress: bool
) -> None:
    """Token-level KL vs each model's baseline file (variants held as local GGUF files)."""
    spec = study.divergence
    local = [v for _, v in variants if v.path is not None]
    if not local or not spec.kld:
        return
    from quantmatrix.divergence_phase import DivergenceOptions, run_divergence
    from quantmatrix.tasks.plan import mc_items

    options = DivergenceOptions(
        threads=study.threads,
        corpus_tokens=spec.corpus_tokens,
        chunk_tokens=spec.chunk_tokens,
        top_k=spec.top_k,
        tail_samples=spec.tail_samples,
        corpus_path=spec.corpus_path,
        kld=spec.kld,
        gpu_layers={m.name: study.gpu_layers_for(m) for m in study.models},
    )
    baselines = study.baseline_variants()
    say = (lambda msg: console.print(msg, highlight=False)) if show_progress else None
    run_divergence(out, local, mc_items(study), baselines, options, on_event=say)
