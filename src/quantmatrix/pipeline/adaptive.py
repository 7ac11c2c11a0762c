"""Adaptive sampling in the study runner: rounds of one seeded order until each tier is known.

Under ``sampling.mode: adaptive`` a model's multiple-choice items are asked in the order of
``stopping.rounds.round_order`` (seeded by ``selection_seed``, stratified by task and
subject, the same for every level), one round at a time. Before each round the log is read
again and the stopping rule (``stopping.rule.adaptive_stops``) is applied to each variant's
paired correctness against the baseline: a variant whose certified tier equals its best case
(or that reached ``max_items``) asks nothing more; the others, and the baseline, ask up to the
next look. What runs next is a pure function of the log, so a killed run resumes on the same
items and stops where an unbroken run stops. Generation samples are asked in full in the
first round (the stopping rule reads the benchmark signal only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from quantmatrix.config import ModelSpec, Study
from quantmatrix.decide import TIER_BOUNDS_BENCH
from quantmatrix.manifest import record_round_order
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.evaluate import BackendFactory, EvalLogs, Evaluated, evaluate_all
from quantmatrix.pipeline.resume import done_in
from quantmatrix.progress import Reporter
from quantmatrix.runlog import SampleRow, VariantRow, load_rows
from quantmatrix.stopping.rounds import round_order, stratum
from quantmatrix.stopping.rule import adaptive_stops, study_alpha
from quantmatrix.tasks import multiple_choice
from quantmatrix.tasks.base import Sample


@dataclass(frozen=True)
class RoundPlan:
    """The generation samples (asked in full) and the multiple-choice ones in round order."""

    generation: tuple[Sample, ...]
    order: tuple[Sample, ...]

    def asked(self, items: int) -> list[Sample]:
        """What a variant asks once it has run ``items`` of the order: generation first, so
        every sample keeps its plan index (and batch group) from round to round."""
        return [*self.generation, *self.order[:items]]


def round_plan(study: Study, samples: Sequence[Sample]) -> RoundPlan:
    mc = {f"{s.task}|{s.item}": s for s in samples if s.kind == "multiple_choice"}
    strata = {key: stratum(s.task, s.inputs.get("subject")) for key, s in mc.items()}
    order = round_order(strata, study.selection_seed)
    generation = tuple(s for s in samples if s.kind != "multiple_choice")
    return RoundPlan(generation, tuple(mc[key] for key in order))


def _prefix(order: Sequence[Sample], correct: Mapping[tuple[str, str], bool]) -> list[bool]:
    """Correctness along the order as far as it is logged without a gap."""
    out: list[bool] = []
    for s in order:
        got = correct.get((s.task, s.item))
        if got is None:
            break
        out.append(got)
    return out


def targets(
    study: Study,
    plan: RoundPlan,
    rows: Sequence[SampleRow],
    skip: frozenset[str] = frozenset(),
) -> dict[str, int]:
    """Variant id -> items of the order it must have run before the next look; variants that
    stopped (and ``skip``: variants whose backend failed in this run) are absent."""
    correct: dict[str, dict[tuple[str, str], bool]] = {}
    for r in rows:
        if r.task_kind == "multiple_choice":
            ok = bool(multiple_choice.score_row(r)["correct"])
            correct.setdefault(r.variant, {})[(r.task, r.item)] = ok
    total = len(plan.order)
    out: dict[str, int] = {}
    for spec in study.models:
        base = spec.baseline_id  # the ladder: by level, then KV type (ordered_labels)
        ladder = [spec.variant_id(lv) for lv in spec.ordered_labels if lv != spec.baseline_label]
        ladder = [v for v in ladder if v not in skip]
        if base in skip:  # nothing pairs without the baseline
            continue
        base_done = _prefix(plan.order, correct.get(base, {}))
        if not ladder:  # nothing to decide: the baseline alone runs a fixed design
            last = min(study.sampling.max_items, total)
            if len(base_done) < last:
                out[base] = last
            continue
        runs = [_prefix(plan.order, correct.get(v, {})) for v in ladder]
        stops = adaptive_stops(
            base_done, runs, study.sampling, TIER_BOUNDS_BENCH, study_alpha(study), total
        )
        if stops.next_look is None:
            continue
        for variant, stopped in zip(ladder, stops.stopped.tolist(), strict=True):
            if not stopped:
                out[variant] = stops.next_look
        out[base] = max(stops.next_look, len(base_done))
    return out


def evaluate_in_rounds(
    study: Study,
    variants: Sequence[tuple[ModelSpec, Variant]],
    samples: Sequence[Sample],
    run: tuple[Path, dict[str, Any]],
    logs: EvalLogs,
    backend_factory: BackendFactory,
    progress: Reporter,
) -> Evaluated:
    """Round after round: each variant that still needs items asks up to the next look.
    ``run`` is the run folder and its manifest (the log is read again before each round)."""
    out, manifest = run
    plan = round_plan(study, samples)
    record_round_order(out, manifest, [f"{s.task}|{s.item}" for s in plan.order])
    outcome = Evaluated(skipped=len(load_rows(out, SampleRow, manifest).rows))
    failed: set[str] = set()
    for turn in range(len(study.sampling.looks(len(plan.order))) + 2):
        rows = load_rows(out, SampleRow, manifest).rows
        wanted = targets(study, plan, rows, frozenset(failed))
        if not wanted:
            break
        done = done_in(rows)
        measured = {r.variant for r in load_rows(out, VariantRow, manifest).rows}
        round_logs = replace(logs, session=f"{logs.session}-r{turn}")
        for items in sorted(set(wanted.values())):
            group = [(s, v) for s, v in variants if wanted.get(v.id) == items]
            got = evaluate_all(
                study, group, plan.asked(items), done, measured, round_logs,
                backend_factory, progress,
            )  # fmt: skip
            outcome.evaluated += got.evaluated
            failed.update(got.failed_variants)
    outcome.failed_variants = sorted(failed)
    return outcome
