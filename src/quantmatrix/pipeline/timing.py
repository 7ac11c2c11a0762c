"""The timing phase: speed figures as one user sending one request sees them (-> TimingRow).

The evaluation decodes requests in batches (``Study.batch_size``), so its speeds are a batch's
aggregate throughput. Here the plan's first ``timing.multiple_choice`` multiple-choice items and
first ``timing.generation`` generation items are asked again, one request per ``generate``
call, on a backend opened with batch size 1, after a warm-up: the decision's tok/s, TTFT and
$/1M come from these rows (``analysis/tables.py``).

Order: the subset (in plan order) is cut into rounds of ``timing.round_items`` items. A model's
levels take round 0 one after another, then round 1, and so on, the level order reversed every
other round (L1 L2 L3, L3 L2 L1, L1 L2 L3, ...): a drift in the machine's load hits every level
alike, a linear one cancels over two rounds, and the level that ends a round begins the next
on the same open backend. Models follow each other in the study's order.

One backend is open at a time, opened again for each visit: a published-size ladder (seven
levels of an 8B model) does not fit in memory at once, and reopening costs load time only
(never measured: the rows time requests, and each load is followed by its warm-up).

Resume: a row's key is (variant, task, item); a killed phase resumes with the requests that
have no row yet, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from quantmatrix.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from quantmatrix.config import ModelSpec, Study, TimingSpec
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.evaluate import WARMUP_PROMPT, BackendFactory, request
from quantmatrix.pipeline.executors.session import logged_letters, logged_timing
from quantmatrix.pipeline.resume import logged_keys
from quantmatrix.progress import SILENT, Reporter, console
from quantmatrix.runlog import TIMING, AppendLog, TimingRow, read_manifest
from quantmatrix.runlog.rows import Key
from quantmatrix.tasks.base import Sample


@dataclass(frozen=True)
class Visit:
    """One round of the subset at one level: the unit the phase opens a backend for."""

    spec: ModelSpec
    variant: Variant
    round: int
    samples: tuple[Sample, ...]


@dataclass
class Timed:
    rows: int = 0
    failed_variants: list[str] = field(default_factory=list)


def timing_subset(samples: Sequence[Sample], spec: TimingSpec) -> list[Sample]:
    """The plan's first ``multiple_choice`` and first ``generation`` items, in plan order."""
    mc = [s for s in samples if s.kind == "multiple_choice"][: spec.multiple_choice]
    gen = [s for s in samples if s.kind == "generation"][: spec.generation]
    chosen = {(s.task, s.item) for s in (*mc, *gen)}
    return [s for s in samples if (s.task, s.item) in chosen]


def visits(
    study: Study, variants: Sequence[tuple[ModelSpec, Variant]], subset: Sequence[Sample]
) -> list[Visit]:
    """Every (level, round) visit, in the phase's fixed order (the module docstring)."""
    size = study.timing.round_items
    rounds = [tuple(subset[k : k + size]) for k in range(0, len(subset), size)]
    out: list[Visit] = []
    for spec in study.models:
        levels = [(s, v) for s, v in variants if s.name == spec.name]
        for r, chunk in enumerate(rounds):
            order = levels if r % 2 == 0 else levels[::-1]
            out += [Visit(s, v, r, chunk) for s, v in order]
    return out


def _key(variant: Variant, sample: Sample) -> Key:
    return (variant.id, sample.task, sample.item)  # TimingRow.KEY


def _ask(backend: Backend, req: GenerationRequest) -> GenerationResult:
    """One request alone: one ``generate`` call, one result."""
    results = list(backend.generate([req]))
    if len(results) != 1:
        raise BackendError(f"backend {backend.name!r} answered {len(results)} results for one")
    return results[0]


def _warm_up(backend: Backend, runs: int) -> None:
    for i in range(runs):
        _ask(backend, GenerationRequest(key=f"warmup-{i}", prompt=WARMUP_PROMPT, max_tokens=8))


def timing_row(visit: Visit, sample: Sample, result: GenerationResult, session: str) -> TimingRow:
    v = visit.variant
    return TimingRow(
        variant=v.id,
        model=v.model,
        level=v.label,
        task=sample.task,
        item=sample.item,
        task_kind=sample.kind,
        round=visit.round,
        output=result.text,
        finish_reason=result.finish_reason,
        letters=logged_letters(sample, result),
        timing=logged_timing(result.timing),
        error=result.error,
        session=session,
    )


class _Backends:
    """The one open backend (batch size 1), kept while consecutive visits share its variant."""

    def __init__(self, study: Study, factory: BackendFactory) -> None:
        self.study = study.model_copy(update={"batch_size": 1})
        self.factory = factory
        self.open: tuple[str, Backend] | None = None

    def get(self, visit: Visit) -> Backend:
        if self.open is not None and self.open[0] == visit.variant.id:
            return self.open[1]
        self.close()
        # timed on one server: a model on several endpoints is timed on its first
        backend = self.factory(visit.variant, visit.spec.on_endpoint(), self.study)
        self.open = (visit.variant.id, backend)
        _warm_up(backend, self.study.timing.warmup_runs)
        return backend

    def close(self) -> None:
        if self.open is not None:
            self.open[1].close()
            self.open = None


def _pending(plan: Sequence[Visit], done: frozenset[Key]) -> Iterator[tuple[Visit, list[Sample]]]:
    for visit in plan:
        left = [s for s in visit.samples if _key(visit.variant, s) not in done]
        if left:
            yield visit, left


def run_timing_phase(
    study: Study,
    out: Path,
    variants: Sequence[tuple[ModelSpec, Variant]],
    samples: Sequence[Sample],
    backend_factory: BackendFactory,
    session: str = "",
    progress: Reporter = SILENT,
) -> Timed:
    """Ask the timing subset single-stream at every level; resumable; a failing variant is
    named and left out, not fatal."""
    subset = timing_subset(samples, study.timing)
    if not study.timing.enabled or not subset or not variants:
        return Timed()
    manifest = read_manifest(out)
    config = None if manifest is None else manifest.get("config_hash")
    backends = _Backends(study, backend_factory)
    with AppendLog(out / TIMING, config) as log:
        done = logged_keys(out, TimingRow, manifest)  # after AppendLog cut a torn last line
        todo = list(_pending(visits(study, variants, subset), done))
        progress.phase("timing (single-stream)", sum(len(left) for _, left in todo))
        phase = _Phase(backends, log, session, progress)
        try:
            for visit, left in todo:
                phase.run(visit, left)
        finally:
            backends.close()
    return phase.outcome


@dataclass
class _Phase:
    backends: _Backends
    log: AppendLog
    session: str
    progress: Reporter
    outcome: Timed = field(default_factory=Timed)

    def run(self, visit: Visit, left: Sequence[Sample]) -> None:
        """The visit's requests, each alone; a BackendError leaves its variant out from here."""
        if visit.variant.id in self.outcome.failed_variants:
            return
        try:
            backend = self.backends.get(visit)
            for sample in left:
                result = _ask(backend, request(sample, self.backends.study, 0))
                self.log.append(timing_row(visit, sample, result, self.session))
                self.outcome.rows += 1
                self.progress.advance()
        except BackendError as exc:  # rows already written stay; a rerun resumes
            console.print(f"[red]{visit.variant.id} (timing): {exc}[/red]", highlight=False)
            self.outcome.failed_variants.append(visit.variant.id)
            self.backends.close()
