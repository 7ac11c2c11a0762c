"""The scoring phase: generation outputs scored against references and against the baseline.

A phase of its own over the run log, batched (models loaded once per process) and resumable:
each scored pair is a row of ``scores.jsonl``; a rerun or ``quantmatrix report`` scores only
the pairs that have no row yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.config import Scoring, Study
from quantmatrix.progress import make_progress
from quantmatrix.runlog import SCORES, AppendLog, RunLog
from quantmatrix.tasks.generation import is_generation

AGAINST = ("reference", "baseline")


@dataclass(frozen=True)
class Pair:
    row: dict[str, Any]
    against: str
    candidate: str
    target: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.row["variant"], self.row["task"], self.row["item"], self.against)


def _baseline_outputs(log: RunLog, study: Study) -> dict[tuple[str, str, str], str]:
    base = {f"{m.name}@{m.baseline_level}": m.name for m in study.models}
    return {
        (base[r["variant"]], r["task"], r["item"]): r["output"]
        for r in log.samples
        if r["variant"] in base and is_generation(r)
    }


def pending_pairs(log: RunLog) -> list[Pair]:
    """Every (output, reference) and (output, baseline output) pair not yet scored."""
    study = Study.model_validate(log.manifest["config"])
    done = {(r["variant"], r["task"], r["item"], r["against"]) for r in log.scores}
    baseline = _baseline_outputs(log, study)
    baseline_ids = {f"{m.name}@{m.baseline_level}" for m in study.models}
    pairs: list[Pair] = []
    for row in log.samples:
        if not is_generation(row):
            continue
        pairs.append(Pair(row, "reference", row["output"], row["input"]["reference"]))
        base = baseline.get((row["model"], row["task"], row["item"]))
        if row["variant"] not in baseline_ids and base is not None:
            pairs.append(Pair(row, "baseline", row["output"], base))
    return [p for p in pairs if p.key not in done]


def _chunks(pairs: list[Pair], size: int) -> Iterator[list[Pair]]:
    for start in range(0, len(pairs), size):
        yield pairs[start : start + size]


def make_scorer(spec: Scoring) -> Any:
    from quantmatrix.scoring.text_scorer import TextScorer

    return TextScorer(
        spec.embedding_model,
        bertscore_model=spec.bertscore_model,
        bertscore_layer=spec.bertscore_layer,
        bertscore_backend=spec.bertscore_backend,
    )


def score_run(run_dir: Path, show_progress: bool = True, scorer: Any = None) -> int:
    """Score every pending pair of the run; return how many were scored now."""
    log = RunLog.load(run_dir)
    pending = pending_pairs(log)
    if not pending:
        return 0
    study = Study.model_validate(log.manifest["config"])
    scorer = scorer or make_scorer(study.scoring)
    models = {
        "embedding_model": scorer.embedding_model,
        "bertscore_model": scorer.bertscore_model,
        "bertscore_layer": scorer.bertscore_layer,
        "bertscore_backend": scorer.bertscore_backend,
    }
    size = study.scoring.batch_size
    config = log.manifest.get("config_hash")
    with AppendLog(run_dir / SCORES, config) as out, make_progress(show_progress) as progress:
        task = progress.add_task("score generations", total=len(pending))
        for chunk in _chunks(pending, size):
            metrics = scorer.score([(p.candidate, p.target) for p in chunk], batch_size=size)
            for pair, values in zip(chunk, metrics, strict=True):
                variant, task_name, item, against = pair.key
                out.append(
                    {
                        "kind": "score",
                        "variant": variant,
                        "task": task_name,
                        "item": item,
                        "against": against,
                        "metrics": values,
                        "models": models,
                    }
                )
            progress.advance(task, len(chunk))
    return len(pending)
