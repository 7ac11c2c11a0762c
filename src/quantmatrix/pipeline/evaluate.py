"""The evaluation phase: each variant answers the samples the log does not hold yet.

items -> requests -> backend -> :class:`SampleRow`, each durable the moment it is written; then
one :class:`VariantRow` per variant and session (memory, warm-up, timing totals).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from quantmatrix.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from quantmatrix.backends.batching import batch_size_for, group_of
from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.resume import pending_groups
from quantmatrix.progress import Reporter, console
from quantmatrix.runlog import AppendLog, LetterStats, SampleRow, SampleTiming, VariantRow
from quantmatrix.runlog.rows import Key
from quantmatrix.tasks import multiple_choice
from quantmatrix.tasks.base import Sample

BackendFactory = Callable[[Variant, ModelSpec, Study], Backend]

WARMUP_PROMPT = "Reply with the single word: ready"


@dataclass
class Evaluated:
    evaluated: int = 0
    skipped: int = 0
    failed_variants: list[str] = field(default_factory=list)


def request(sample: Sample, study: Study, index: int) -> GenerationRequest:
    """The request for the plan's ``index``-th sample (its batch group follows from the index)."""
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


def sample_row(variant: Variant, sample: Sample, result: GenerationResult) -> SampleRow:
    t = result.timing
    letters = None
    if result.letter_probs is not None:
        stats = multiple_choice.letter_stats(result.letter_probs, sample.inputs["gold"])
        letters = LetterStats.model_validate(stats)
    return SampleRow(
        variant=variant.id,
        model=variant.model,
        level=variant.level,
        task=sample.task,
        item=sample.item,
        task_kind=sample.kind,
        input={**sample.inputs, "prompt": sample.prompt, "max_tokens": sample.max_tokens},
        output=result.text,
        finish_reason=result.finish_reason,
        letters=letters,
        timing=SampleTiming(
            prompt_tokens=t.prompt_tokens,
            generated_tokens=t.generated_tokens,
            prompt_eval_s=t.prompt_eval_s,
            decode_s=t.decode_s,
            decode_tokens=t.decode_tokens,
            ttft_s=t.ttft_s,
            wall_s=t.wall_s,
        ),
        error=result.error,
    )


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
    asked: Sequence[tuple[int, Sample]],
    study: Study,
    samples_log: AppendLog,
    progress: Reporter,
    session: str,
    logged: Callable[[Sample], bool] = lambda s: False,
) -> VariantRow:
    """Ask every (plan index, sample) in ``asked``; each row is durable the moment it is
    written. A ``logged`` sample is asked again only to keep its batch group whole: its result
    is not written twice (``resume.pending_groups``)."""
    if study.decoding.mc_scoring == "letters" and not backend.capabilities.letter_probs:
        raise BackendError(
            f"backend {backend.name!r} gives no option-letter probabilities; set "
            "decoding.mc_scoring to 'generation' or 'both' for this model"
        )
    warmup_s = _warm_up(backend, study)
    native = 0.0
    started = time.perf_counter()
    by_key = {f"{s.task}|{s.item}": s for _, s in asked}
    written = 0
    for result in backend.generate([request(s, study, i) for i, s in asked]):
        native += result.timing.native_s or 0.0
        if logged(by_key[result.key]):
            continue
        samples_log.append(sample_row(variant, by_key[result.key], result))
        written += 1
        progress.advance()
    eval_wall = time.perf_counter() - started
    memory = backend.memory()
    return VariantRow(
        variant=variant.id,
        model=variant.model,
        level=variant.level,
        file=variant.info.as_dict() if variant.info else None,
        source_sha256=variant.source_sha256,
        source_type=variant.source_type,
        reconstructed=variant.reconstructed,
        **variant.log_fields(),
        backend=backend.info(),
        memory=None
        if memory is None
        else {"peak_bytes": memory.peak_bytes, "source": memory.source, **memory.extra},
        warmup_runs=study.warmup_runs,
        warmup_s=warmup_s,
        session_samples=written,
        session_eval_wall_s=eval_wall,
        session_native_s=native,
        session=session,
    )


def _sample_key(variant_id: str) -> Callable[[Sample], Key]:
    """A sample's key in ``samples.jsonl`` for this variant (``SampleRow.KEY``)."""
    return lambda s: (variant_id, s.task, s.item)


def _logged(key: Callable[[Sample], Key], done: frozenset[Key]) -> Callable[[Sample], bool]:
    return lambda s: key(s) in done


@dataclass(frozen=True)
class EvalLogs:
    samples: AppendLog
    variants: AppendLog
    session: str


def evaluate_all(
    study: Study,
    variants: Sequence[tuple[ModelSpec, Variant]],
    samples: Sequence[Sample],
    done: frozenset[Key],
    measured: set[str],
    logs: EvalLogs,
    backend_factory: BackendFactory,
    progress: Reporter,
) -> Evaluated:
    """Every variant answers its pending samples; a variant that fails is named, not fatal."""
    outcome = Evaluated()
    for spec, variant in variants:
        key = _sample_key(variant.id)
        asked = pending_groups(samples, key, done, batch_size_for(spec, study))
        todo = [s for _, s in asked if key(s) not in done]
        outcome.skipped += len(samples) - len(todo)
        if not todo and variant.id in measured:
            continue
        progress.phase(f"eval {variant.id}", len(todo))
        try:
            backend = backend_factory(variant, spec, study)
        except BackendError as exc:
            console.print(f"[red]{variant.id}: {exc}[/red]")
            outcome.failed_variants.append(variant.id)
            continue
        try:
            row = evaluate_variant(
                variant,
                backend,
                asked,
                study,
                logs.samples,
                progress,
                logs.session,
                _logged(key, done),
            )
        except BackendError as exc:  # rows already written stay; a rerun resumes
            console.print(f"[red]{variant.id}: {exc}[/red]", highlight=False)
            outcome.failed_variants.append(variant.id)
            continue
        finally:
            backend.close()
        logs.variants.append(row)
        outcome.evaluated += len(todo)
    return outcome
