"""The determinism check: answered items asked again on a fresh backend (-> DeterminismRow).

With ``determinism.items`` K > 0 (``quantmatrix run --check-determinism K``), after the
evaluation each variant asks some of the items it answered again and each answer is compared
bit for bit with its sample row (``backends/agreement.py``): the output text, and the option
letters' probabilities where both have them.

What is asked again, and how:

- **Same batch shapes.** The embedded engine decoded the plan's batch groups together
  (``backends/batching.py``), and a group's outputs depend on its make-up (greedy outputs at 8
  sequences are not bit-identical to 1 sequence), so whole groups are asked again, the same
  requests in the same order with the same group numbers, and every item of a group is
  compared. A group is eligible when the variant logged an answer without error for every item
  of it and the evaluation asked it whole in one call: under adaptive sampling a group cut by a
  round's end was first asked in part (those items' rows come from a smaller batch), so it is
  left out. Servers and the fake backend answer one request at a time: a group is one item.
- **Which groups.** Eligible groups are ranked by the SHA-256 of (``selection_seed``, their
  items' keys), which does not depend on the level, and taken in that order until they hold K
  multiple-choice items, then until they hold K generation items (when the study has any). So
  every level of a model re-asks the same items where it can, and a larger K adds items
  without changing those already chosen.
- **Fresh.** One new backend per variant, opened for the check alone with no warm-up: a new
  llama.cpp model and context, for the embedded engine at another thread count
  (``determinism.threads``, default half the evaluation's, or 2 after 1); a new client for a
  server (whose own caches are its business).

Resume: a row's key is (variant, task, item); a group with a pending item is asked again whole
(same shapes) and only the pending rows are written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantmatrix.backends.agreement import agreement
from quantmatrix.backends.base import Backend, BackendError, GenerationResult
from quantmatrix.backends.batching import batch_size_for
from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.adaptive import round_plan
from quantmatrix.pipeline.evaluate import BackendFactory, request
from quantmatrix.pipeline.resume import logged_keys
from quantmatrix.progress import SILENT, Reporter, console
from quantmatrix.runlog import (
    DETERMINISM,
    AppendLog,
    DeterminismRow,
    SampleRow,
    VariantRow,
    load_rows,
    read_manifest,
)
from quantmatrix.runlog.rows import Key
from quantmatrix.tasks.base import Sample

KINDS = ("multiple_choice", "generation")


@dataclass(frozen=True)
class Group:
    """A batch group as the evaluation asked it: (plan index, sample), in plan order."""

    items: tuple[tuple[int, Sample], ...]

    def count(self, kind: str) -> int:
        return sum(s.kind == kind for _, s in self.items)

    def rank(self, seed: int) -> str:
        keys = "|".join(f"{s.task}|{s.item}" for _, s in self.items)
        return hashlib.sha256(f"{seed}|determinism|{keys}".encode()).hexdigest()


@dataclass
class Checked:
    rows: int = 0
    failed_variants: list[str] = field(default_factory=list)


def asked_list(study: Study, samples: Sequence[Sample]) -> tuple[list[Sample], set[int]]:
    """The evaluation's sample list (whose positions give the batch groups) and the positions
    where one of its calls ended before the list did (adaptive rounds)."""
    if study.sampling.mode != "adaptive":
        return list(samples), set()
    plan = round_plan(study, samples)
    ends = {len(plan.generation) + look for look in study.sampling.looks(len(plan.order))}
    return plan.asked(len(plan.order)), ends


def groups_of(listed: Sequence[Sample], ends: set[int], size: int) -> list[Group]:
    """The list cut into batch groups of ``size``, without those a call's end cut in two."""
    size = max(1, size)
    out = []
    for start in range(0, len(listed), size):
        stop = min(start + size, len(listed))
        if any(start < end < stop for end in ends):
            continue
        out.append(Group(tuple((i, listed[i]) for i in range(start, stop))))
    return out


def choose(groups: Sequence[Group], answered: set[Key], k: int, seed: int) -> list[Group]:
    """Whole eligible groups (every item answered), in the seeded rank order, until they hold
    ``k`` items of each kind the groups have; returned in plan order."""
    eligible = [g for g in groups if all((s.task, s.item) in answered for _, s in g.items)]
    ranked = sorted(eligible, key=lambda g: g.rank(seed))
    chosen: list[Group] = []
    for kind in KINDS:
        have = sum(g.count(kind) for g in chosen)
        for g in ranked:
            if have >= k:
                break
            if g.count(kind) and g not in chosen:
                chosen.append(g)
                have += g.count(kind)
    return sorted(chosen, key=lambda g: g.items[0][0])


def other_threads(threads: int, asked: int | None) -> int:
    """The re-run's thread count: ``asked``, else half of ``threads`` (at least 1), else 2."""
    if asked is not None:
        return asked
    return max(1, threads // 2) if threads > 1 else 2


@dataclass(frozen=True)
class Visit:
    """One variant's check: its groups, the sample rows they are compared with, the threads."""

    spec: ModelSpec
    variant: Variant
    groups: tuple[Group, ...]
    rows: dict[Key, SampleRow]
    threads: int | None  # the evaluation's (embedded engine)
    rerun_threads: int | None


def _eval_threads(spec: ModelSpec, study: Study, sessions: Sequence[VariantRow]) -> int | None:
    """The thread count the evaluation's backend reported (its latest session), else the
    study's; None for a backend without threads (servers, fake)."""
    if spec.backend != "llamacpp":
        return None
    for row in reversed(sessions):
        found = row.backend.get("threads")
        if isinstance(found, int):
            return found
    return study.threads or os.cpu_count() or 1


def plan_visits(
    study: Study,
    out: Path,
    manifest: dict[str, Any] | None,
    variants: Sequence[tuple[ModelSpec, Variant]],
    samples: Sequence[Sample],
) -> list[Visit]:
    """Per variant with answered items, what it asks again (the module docstring)."""
    listed, ends = asked_list(study, samples)
    answers = [r for r in load_rows(out, SampleRow, manifest).rows if r.error is None]
    sessions = load_rows(out, VariantRow, manifest).rows
    spec_k = study.determinism
    visits = []
    for spec, variant in variants:
        mine = {(r.task, r.item): r for r in answers if r.variant == variant.id}
        groups = groups_of(listed, ends, batch_size_for(spec, study))
        chosen = choose(groups, set(mine), spec_k.items, study.selection_seed)
        if not chosen:
            continue
        threads = _eval_threads(spec, study, [r for r in sessions if r.variant == variant.id])
        again = None if threads is None else other_threads(threads, spec_k.threads)
        rows = {(variant.id, t, i): r for (t, i), r in mine.items()}
        visits.append(Visit(spec, variant, tuple(chosen), rows, threads, again))
    return visits


def determinism_row(
    visit: Visit, sample: Sample, result: GenerationResult, size: int, session: str
) -> DeterminismRow:
    v = visit.variant
    first = visit.rows[(v.id, sample.task, sample.item)]
    probs = None if first.letters is None else first.letters.probs
    same = agreement(first.output, probs, result.text, result.letter_probs)
    return DeterminismRow(
        variant=v.id,
        model=v.model,
        level=v.level,
        task=sample.task,
        item=sample.item,
        task_kind=sample.kind,
        backend=visit.spec.backend,
        threads=visit.threads,
        rerun_threads=visit.rerun_threads,
        group_size=size,
        same_output=same.same_output,
        same_letters=same.same_letters,
        letters_max_abs_diff=same.letters_max_abs_diff,
        output=result.text,
        letter_probs=result.letter_probs,
        error=result.error,
        session=session,
    )


def run_determinism_phase(
    study: Study,
    out: Path,
    variants: Sequence[tuple[ModelSpec, Variant]],
    samples: Sequence[Sample],
    backend_factory: BackendFactory,
    session: str = "",
    progress: Reporter = SILENT,
) -> Checked:
    """Ask each variant's chosen groups again on a fresh backend; resumable; a failing variant
    is named and left out, not fatal."""
    if study.determinism.items <= 0 or not variants:
        return Checked()
    manifest = read_manifest(out)
    config = None if manifest is None else manifest.get("config_hash")
    visits = plan_visits(study, out, manifest, variants, samples)
    with AppendLog(out / DETERMINISM, config) as log:
        done = logged_keys(out, DeterminismRow, manifest)  # after AppendLog cut a torn tail
        todo = [(v, _pending(v, done)) for v in visits]
        todo = [(v, groups) for v, groups in todo if groups]
        left = sum(_key(v, s) not in done for v, gs in todo for g in gs for _, s in g.items)
        progress.phase("determinism (fresh re-runs)", left)
        phase = _Phase(study, backend_factory, log, done, session, progress)
        for visit, groups in todo:
            phase.run(visit, groups)
    return phase.outcome


def _key(visit: Visit, sample: Sample) -> Key:
    return (visit.variant.id, sample.task, sample.item)  # DeterminismRow.KEY


def _pending(visit: Visit, done: frozenset[Key]) -> list[Group]:
    return [g for g in visit.groups if any(_key(visit, s) not in done for _, s in g.items)]


@dataclass
class _Phase:
    study: Study
    factory: BackendFactory
    log: AppendLog
    done: frozenset[Key]
    session: str
    progress: Reporter
    outcome: Checked = field(default_factory=Checked)

    def _open(self, visit: Visit) -> Backend:
        study = self.study
        if visit.rerun_threads is not None:
            study = study.model_copy(update={"threads": visit.rerun_threads})
        return self.factory(visit.variant, visit.spec.on_endpoint(), study)

    def run(self, visit: Visit, groups: Sequence[Group]) -> None:
        """The variant's groups on one fresh backend; a BackendError leaves it out."""
        try:
            backend = self._open(visit)
        except BackendError as exc:
            self._failed(visit, exc)
            return
        try:
            for group in groups:
                self._ask(backend, visit, group)
        except BackendError as exc:  # rows already written stay; a rerun resumes
            self._failed(visit, exc)
        finally:
            backend.close()

    def _ask(self, backend: Backend, visit: Visit, group: Group) -> None:
        by_key = {f"{s.task}|{s.item}": s for _, s in group.items}
        asked = [request(s, self.study, i) for i, s in group.items]
        for result in backend.generate(asked):
            sample = by_key[result.key]
            if _key(visit, sample) in self.done:
                continue
            row = determinism_row(visit, sample, result, len(asked), self.session)
            self.log.append(row)
            self.outcome.rows += 1
            self.progress.advance()

    def _failed(self, visit: Visit, exc: BackendError) -> None:
        console.print(f"[red]{visit.variant.id} (determinism): {exc}[/red]", highlight=False)
        self.outcome.failed_variants.append(visit.variant.id)
