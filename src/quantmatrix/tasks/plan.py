"""From the study's task specs to the list of samples every variant answers."""

from __future__ import annotations

from quantmatrix.config import (
    ARCTask,
    ConfigError,
    GenerationTask,
    LocalMCTask,
    MMLUTask,
    Study,
    TaskSpec,
)
from quantmatrix.data.benchmarks import (
    DataError,
    MCItem,
    load_arc_challenge,
    load_local_mc,
    load_mmlu,
)
from quantmatrix.data.generation import load_generation_items
from quantmatrix.tasks import generation, multiple_choice
from quantmatrix.tasks.base import Sample
from quantmatrix.tasks.many_shot import many_shot_samples


def _items(spec: MMLUTask | ARCTask | LocalMCTask, seed: int) -> list[MCItem]:
    if isinstance(spec, MMLUTask):
        return load_mmlu(spec.per_subject, spec.n, spec.split, seed)
    if isinstance(spec, ARCTask):
        return load_arc_challenge(spec.n, seed)
    if isinstance(spec, LocalMCTask):
        return load_local_mc(spec.path, spec.name, spec.n, seed)
    raise TypeError(f"unknown task spec {spec!r}")


def _samples(spec: TaskSpec, study: Study) -> list[Sample]:
    dec = study.decoding
    if isinstance(spec, GenerationTask):
        try:
            items = load_generation_items(spec.path, spec.tasks, spec.per_task)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        budget = spec.max_new_tokens or dec.max_new_tokens
        return [generation.to_sample(item, budget) for item in items]
    return [
        multiple_choice.to_sample(
            item, dec.mc_max_new_tokens, dec.mc_stop_at_line_end, dec.mc_scoring
        )
        for item in _items(spec, study.selection_seed)
    ]


def mc_items(study: Study) -> list[MCItem]:
    """The multiple-choice items of the study (their text is the default KL corpus)."""
    return [
        item
        for spec in study.tasks
        if not isinstance(spec, GenerationTask)
        for item in _items(spec, study.selection_seed)
    ]


def plan_samples(study: Study) -> list[Sample]:
    """Every sample of the study, in a stable order (task order, then the seeded item order),
    then the long-context probe's many-shot questions, bucket after bucket.

    An item two task entries both ask (a task listed twice, MMLU picked twice with counts that
    overlap) is planned once, where it first comes: a key is one row in the log, and each
    phase asks each planned item once. Two different items under one key are refused.
    """
    planned: dict[tuple[str, str], Sample] = {}
    for spec in study.tasks:
        for sample in _samples(spec, study):
            first = planned.setdefault((sample.task, sample.item), sample)
            if first != sample:
                raise ConfigError(
                    f"item {sample.item!r} of task {sample.task!r} is asked by two task entries "
                    "in different ways; list each task once, or give local tasks their own names"
                )
    return list(planned.values()) + many_shot_samples(study)
