"""One loaded backend answering shards: what the local loop and every Ray actor run.

A session checks the variant's file against its SHA-256 (a worker on another host reads its
own copy), opens the backend once, warms it up once, then answers shard after shard. It writes
nothing: it returns typed rows, and the driver writes them (``delivery.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from quantmatrix.backends.base import (
    Backend,
    BackendError,
    GenerationRequest,
    GenerationResult,
    Timing,
)
from quantmatrix.backends.batching import group_of
from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.hashing import sha256_file
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.executors.base import BackendFactory, SessionStats, Shard, ShardResult
from quantmatrix.runlog import LetterStats, SampleRow, SampleTiming
from quantmatrix.tasks import multiple_choice
from quantmatrix.tasks.base import Sample

WARMUP_PROMPT = "Reply with the single word: ready"


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


def logged_timing(t: Timing) -> SampleTiming:
    """A result's timings as a log row keeps them (sample and timing rows alike)."""
    return SampleTiming(**{name: getattr(t, name) for name in SampleTiming.model_fields})


def logged_letters(sample: Sample, result: GenerationResult) -> LetterStats | None:
    """A multiple-choice reply's letter probabilities as a log row keeps them (sample and
    timing rows alike); None when the backend gave none."""
    if result.letter_probs is None:
        return None
    stats = multiple_choice.letter_stats(result.letter_probs, sample.inputs["gold"])
    return LetterStats.model_validate(stats)


def sample_row(variant: Variant, sample: Sample, result: GenerationResult) -> SampleRow:
    letters = logged_letters(sample, result)
    return SampleRow(
        variant=variant.id,
        model=variant.model,
        level=variant.label,
        task=sample.task,
        item=sample.item,
        task_kind=sample.kind,
        input={**sample.inputs, "prompt": sample.prompt, "max_tokens": sample.max_tokens},
        output=result.text,
        finish_reason=result.finish_reason,
        letters=letters,
        timing=logged_timing(result.timing),
        error=result.error,
    )


def check_file(variant: Variant, expected: str | None) -> None:
    """Refuse a variant file whose bytes are not the ones the driver built and logged."""
    if variant.path is None or expected is None:
        return
    path = Path(variant.path)
    if not path.is_file():
        raise BackendError(
            f"{variant.id}: model file {path} is not on this host; put the cache on a shared "
            "folder or copy the driver's files to the same path"
        )
    got = sha256_file(path)
    if got != expected:
        raise BackendError(
            f"{variant.id}: {path} has SHA-256 {got[:12]}..., not the driver's "
            f"{expected[:12]}...; this host holds other bytes under that path"
        )


def warm_up(backend: Backend, study: Study) -> float:
    started = time.perf_counter()
    requests = [
        GenerationRequest(key=f"warmup-{i}", prompt=WARMUP_PROMPT, max_tokens=8)
        for i in range(study.warmup_runs)
    ]
    for _ in backend.generate(requests):
        pass
    return time.perf_counter() - started


class VariantSession:
    """A variant's backend, opened and warmed up once, answering shards until closed."""

    def __init__(
        self,
        variant: Variant,
        spec: ModelSpec,
        study: Study,
        factory: BackendFactory,
        where: str = "local",
    ) -> None:
        check_file(variant, variant.sha256)
        self.variant, self.study, self.where = variant, study, where
        self.backend = factory(variant, spec, study)
        try:
            if (
                study.decoding.mc_scoring == "letters"
                and not self.backend.capabilities.letter_probs
            ):
                raise BackendError(
                    f"backend {self.backend.name!r} gives no option-letter probabilities; set "
                    "decoding.mc_scoring to 'generation' or 'both' for this model"
                )
            self.warmup_s = warm_up(self.backend, study)
        except BaseException:
            self.backend.close()
            raise

    def run(self, shard: Shard, on_row: Callable[[SampleRow], object] | None = None) -> ShardResult:
        """Every item of the shard answered; ``on_row`` gets each row the moment it is made
        (the local executor writes it then, so a kill loses at most that row)."""
        by_key = {f"{s.task}|{s.item}": s for _, s in shard.items}
        native, rows = 0.0, []
        started = time.perf_counter()
        asked = [request(s, self.study, i) for i, s in shard.items]
        for result in self.backend.generate(asked):
            native += result.timing.native_s or 0.0
            rows.append(sample_row(self.variant, by_key[result.key], result))
            if on_row is not None:
                on_row(rows[-1])
        wall = time.perf_counter() - started
        return ShardResult(shard.variant, shard.number, tuple(rows), wall, native)

    def stats(self) -> SessionStats:
        memory = self.backend.memory()
        reading = None
        if memory is not None:
            reading = {"peak_bytes": memory.peak_bytes, "source": memory.source, **memory.extra}
        return SessionStats(self.backend.info(), reading, self.warmup_s, self.where)

    def close(self) -> None:
        self.backend.close()
