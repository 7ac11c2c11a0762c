"""From the run log to the statistics module's inputs: per-item outcomes down each ladder."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from quantmatrix.analysis.generation import item_metrics
from quantmatrix.analysis.stats.inputs import ModelLadder, VariantOutcomes
from quantmatrix.config import Study
from quantmatrix.runlog import RunLog
from quantmatrix.tasks import multiple_choice
from quantmatrix.tasks.generation import is_generation


def _decode_tps(timing: dict[str, Any]) -> float | None:
    tokens, seconds = timing.get("decode_tokens"), timing.get("decode_s")
    return tokens / seconds if tokens and seconds else None


def _outcomes(
    log: RunLog, variant: str, model: str, level: str, rows: list[dict[str, Any]]
) -> VariantOutcomes:
    correct = {
        f"{r['task']}|{r['item']}": bool(multiple_choice.score_row(r)["correct"])
        for r in rows
        if not is_generation(r)
    }
    ttft = [r["timing"]["ttft_s"] for r in rows if r["timing"].get("ttft_s") is not None]
    tps = [v for v in (_decode_tps(r["timing"]) for r in rows) if v is not None]
    return VariantOutcomes(variant, model, level, correct, item_metrics(log, variant), ttft, tps)


def model_ladders(log: RunLog) -> list[ModelLadder]:
    """One ladder per model, baseline first then down the levels; variants with no rows left out."""
    study = Study.model_validate(log.manifest["config"])
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in log.samples:
        by_variant[row["variant"]].append(row)
    ladders = []
    for spec in study.models:
        base = spec.baseline_level
        levels = [base] + [lv for lv in spec.ordered_levels if lv != base]
        variants = [
            _outcomes(log, f"{spec.name}@{lv}", spec.name, lv, by_variant[f"{spec.name}@{lv}"])
            for lv in levels
            if by_variant.get(f"{spec.name}@{lv}")
        ]
        if variants and variants[0].level == base:
            ladders.append(ModelLadder(spec.name, base, variants))
    return ladders
