"""The scoring phase: generation outputs scored against references and against the baseline.

A phase of its own over the run log, batched (models loaded once per process) and resumable:
each scored pair is a :class:`ScoreRow` of ``scores.jsonl``; a rerun or ``quantmatrix report``
scores only the pairs that have no row yet (``resume.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from quantmatrix.config import Scoring
from quantmatrix.pipeline.resume import done_in, pending
from quantmatrix.progress import SILENT, Reporter
from quantmatrix.runlog import SCORES, AppendLog, RunLog, SampleRow, ScoreRow, ScoringModels
from quantmatrix.runlog.rows import Key

Against = Literal["reference", "baseline"]


class Scorer(Protocol):
    """Per-pair generation metrics (``scoring.text_scorer.TextScorer``; tests pass a fast one)."""

    embedding_model: str
    bertscore_model: str
    bertscore_layer: int
    bertscore_backend: str

    def score(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 32
    ) -> list[dict[str, float]]: ...


@dataclass(frozen=True)
class Pair:
    row: SampleRow
    against: Against
    candidate: str
    target: str

    @property
    def key(self) -> Key:
        return (self.row.variant, self.row.task, self.row.item, self.against)


def _baseline_outputs(log: RunLog) -> dict[tuple[str, str, str], str]:
    base = {m.baseline_id: m.name for m in log.study.models}
    return {
        (base[r.variant], r.task, r.item): r.output
        for r in log.samples
        if r.variant in base and r.task_kind == "generation"
    }


def pending_pairs(log: RunLog) -> list[Pair]:
    """Every (output, reference) and (output, baseline output) pair not yet scored."""
    baseline = _baseline_outputs(log)
    baseline_ids = {m.baseline_id for m in log.study.models}
    pairs: list[Pair] = []
    for row in log.samples:
        if row.task_kind != "generation":
            continue
        pairs.append(Pair(row, "reference", row.output, row.input["reference"]))
        base = baseline.get((row.model, row.task, row.item))
        if row.variant not in baseline_ids and base is not None:
            pairs.append(Pair(row, "baseline", row.output, base))
    return pending(pairs, lambda p: p.key, done_in(log.scores))


def _chunks(pairs: list[Pair], size: int) -> Iterator[list[Pair]]:
    for start in range(0, len(pairs), size):
        yield pairs[start : start + size]


def make_scorer(spec: Scoring) -> Scorer:
    from quantmatrix.scoring.text_scorer import TextScorer

    return TextScorer(
        spec.embedding_model,
        bertscore_model=spec.bertscore_model,
        bertscore_layer=spec.bertscore_layer,
        bertscore_backend=spec.bertscore_backend,
    )


def _models(scorer: Scorer) -> ScoringModels:
    return ScoringModels(
        embedding_model=scorer.embedding_model,
        bertscore_model=scorer.bertscore_model,
        bertscore_layer=scorer.bertscore_layer,
        bertscore_backend=scorer.bertscore_backend,
    )


def score_run(run_dir: Path, progress: Reporter = SILENT, scorer: Scorer | None = None) -> int:
    """Score every pending pair of the run; return how many were scored now."""
    log = RunLog.load(run_dir)
    todo = pending_pairs(log)
    if not todo:
        return 0
    scorer = scorer or make_scorer(log.study.scoring)
    models = _models(scorer)
    size = log.study.scoring.batch_size
    with AppendLog(run_dir / SCORES, log.manifest.get("config_hash")) as out:
        progress.phase("score generations", len(todo))
        for chunk in _chunks(todo, size):
            metrics = scorer.score([(p.candidate, p.target) for p in chunk], batch_size=size)
            for pair, values in zip(chunk, metrics, strict=True):
                row = pair.row
                out.append(
                    ScoreRow(variant=row.variant, task=row.task, item=row.item,
                             against=pair.against, metrics=values, models=models)
                )  # fmt: skip
            progress.advance(len(chunk))
    return len(todo)
