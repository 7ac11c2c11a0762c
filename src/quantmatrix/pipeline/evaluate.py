"""The evaluation phase: each variant answers the samples the log does not hold yet.

:func:`evaluate_all` plans the units of work, (variant, shard of whole batch groups), and hands
them to the study's executor (``executors/``: local by default, or Ray); the driver writes
every :class:`SampleRow` as it comes back, then one :class:`VariantRow` per variant and session
(memory, warm-up, timing totals). It may be called several times in one run, each with a subset
of the samples or variants: the Ray executor keeps its connection and its actors between calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from quantmatrix.backends.batching import batch_size_for
from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.executors import registry
from quantmatrix.pipeline.executors.base import (
    BackendFactory,
    Evaluated,
    VariantWork,
    cut_shards,
)
from quantmatrix.pipeline.executors.delivery import Delivery, EvalLogs
from quantmatrix.pipeline.executors.session import WARMUP_PROMPT, request, sample_row
from quantmatrix.pipeline.resume import pending_groups
from quantmatrix.progress import Reporter
from quantmatrix.runlog.rows import Key
from quantmatrix.tasks.base import Sample

__all__ = [
    "WARMUP_PROMPT", "BackendFactory", "EvalLogs", "Evaluated", "evaluate_all", "plan_work",
    "request", "sample_row",
]  # fmt: skip


def plan_work(
    study: Study,
    variants: Sequence[tuple[ModelSpec, Variant]],
    samples: Sequence[Sample],
    done: frozenset[Key],
    measured: set[str],
    outcome: Evaluated,
) -> list[VariantWork]:
    """Per variant with pending samples (or no session row yet), its shards in plan order."""
    works = []
    for spec, variant in variants:
        key = _sample_key(variant.id)
        size = batch_size_for(spec, study)
        asked = pending_groups(samples, key, done, size)
        todo = sum(key(s) not in done for _, s in asked)
        outcome.skipped += len(samples) - todo
        if not todo and variant.id in measured:
            continue
        shards = cut_shards(variant.id, asked, size, study.executor.shard_samples)
        works.append(VariantWork(spec, variant, shards, todo))
    return works


def _sample_key(variant_id: str) -> Callable[[Sample], Key]:
    """A sample's key in ``samples.jsonl`` for this variant (``SampleRow.KEY``)."""
    return lambda s: (variant_id, s.task, s.item)


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
    works = plan_work(study, variants, samples, done, measured, outcome)
    if not works:
        return outcome
    delivery = Delivery(logs, done, progress, outcome, study.warmup_runs)
    registry.create(study.executor, backend_factory).run(study, works, delivery)
    return outcome
