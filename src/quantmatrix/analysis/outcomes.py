"""From the run log to the statistics module's inputs: per-item outcomes down each ladder."""

from __future__ import annotations

from collections import defaultdict

from quantmatrix.analysis.generation import item_metrics
from quantmatrix.analysis.stats.inputs import ModelLadder, VariantOutcomes
from quantmatrix.runlog import RunLog, SampleRow, SampleTiming
from quantmatrix.tasks import multiple_choice


def _decode_tps(timing: SampleTiming) -> float | None:
    tokens, seconds = timing.decode_tokens, timing.decode_s
    return tokens / seconds if tokens and seconds else None


def _outcomes(
    log: RunLog, variant: str, model: str, level: str, rows: list[SampleRow]
) -> VariantOutcomes:
    correct = {
        f"{r.task}|{r.item}": bool(multiple_choice.score_row(r)["correct"])
        for r in rows
        if r.task_kind == "multiple_choice"
    }
    # the speed series: the single-stream timing rows when the timing phase ran, else the
    # evaluation's own rows (older logs, or the phase disabled)
    single = sorted((r for r in log.timing if r.variant == variant and r.error is None),
                    key=lambda r: r.key)  # fmt: skip
    timings = [r.timing for r in single] or [r.timing for r in rows]
    ttft = [t.ttft_s for t in timings if t.ttft_s is not None]
    tps = [v for v in (_decode_tps(t) for t in timings) if v is not None]
    return VariantOutcomes(variant, model, level, correct, item_metrics(log, variant), ttft, tps)


def model_ladders(log: RunLog) -> list[ModelLadder]:
    """One ladder per model, baseline first then down the levels; variants with no rows left out."""
    study = log.study
    by_variant: dict[str, list[SampleRow]] = defaultdict(list)
    for row in log.samples:
        by_variant[row.variant].append(row)
    ladders = []
    for spec in study.models:
        base = spec.baseline_label  # labels: the level, +kv-TYPE for a KV type
        levels = [base] + [lv for lv in spec.ordered_labels if lv != base]
        ids = {lv: spec.variant_id(lv) for lv in levels}
        variants = [
            _outcomes(log, ids[lv], spec.name, lv, by_variant[ids[lv]])
            for lv in levels
            if by_variant.get(ids[lv])
        ]
        if variants and variants[0].level == base:
            ladders.append(ModelLadder(spec.name, base, variants))
    return ladders
