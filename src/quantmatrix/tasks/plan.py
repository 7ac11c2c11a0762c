"""From the study's task specs to the list of samples every variant answers."""

from __future__ import annotations

from quantmatrix.config import ARCTask, LocalMCTask, MMLUTask, Study, TaskSpec
from quantmatrix.data.benchmarks import MCItem, load_arc_challenge, load_local_mc, load_mmlu
from quantmatrix.tasks import multiple_choice
from quantmatrix.tasks.base import Sample


def _items(spec: TaskSpec, seed: int) -> list[MCItem]:
    if isinstance(spec, MMLUTask):
        return load_mmlu(spec.per_subject, spec.n, spec.split, seed)
    if isinstance(spec, ARCTask):
        return load_arc_challenge(spec.n, seed)
    if isinstance(spec, LocalMCTask):
        return load_local_mc(spec.path, spec.name, spec.n, seed)
    raise TypeError(f"unknown task spec {spec!r}")


def plan_samples(study: Study) -> list[Sample]:
    """Every sample of the study, in a stable order (task order, then the seeded item order)."""
    dec = study.decoding
    return [
        multiple_choice.to_sample(item, dec.mc_max_new_tokens, dec.mc_stop_at_line_end)
        for spec in study.tasks
        for item in _items(spec, study.selection_seed)
    ]
