"""Generation quality per variant, from the scored rows of the run log (pure functions).

Per variant: each metric's mean with a 95% t-interval (statsmodels ``DescrStatsW``), the key
metric average (mean of BERTScore F1, coherence and ROUGE-L) and its change in % vs the
baseline, a per-task breakdown, fidelity to the baseline's own answers, and a flag when
repetition collapses (falls well below the baseline's).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from statsmodels.stats.weightstats import DescrStatsW

from quantmatrix.analysis.variant_model import GenerationBlock, GenerationSummary, MetricCI
from quantmatrix.runlog import RunLog, ScoreRow

KEY_METRICS = ("bertscore_f1", "coherence", "rouge_l")
METRICS = ("key_avg", *KEY_METRICS, "bleu", "exact_match", "length_ratio", "repetition")
# repetition below this share of the baseline's flags a collapse (the published study saw
# 0.992 -> 0.702 at Q2_K)
COLLAPSE_RATIO = 0.9


def mean_ci(values: list[float]) -> MetricCI:
    if not values:
        return MetricCI(mean=None, ci_low=None, ci_high=None)
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if arr.size < 2 or float(arr.std()) == 0.0:
        return MetricCI(mean=mean, ci_low=mean, ci_high=mean)
    low, high = DescrStatsW(arr).tconfint_mean(alpha=0.05)
    return MetricCI(mean=mean, ci_low=float(low), ci_high=float(high))


def _by_variant(log: RunLog, against: str) -> dict[str, list[ScoreRow]]:
    rows: dict[str, list[ScoreRow]] = defaultdict(list)
    for r in log.scores:
        if r.against == against:
            rows[r.variant].append(r)
    return rows


def _block(rows: list[ScoreRow]) -> GenerationBlock:
    ordered = sorted(rows, key=lambda r: (r.task, r.item))
    return GenerationBlock(
        n=len(ordered),
        metrics={m: mean_ci([r.metrics[m] for r in ordered]) for m in METRICS},
    )


def _pct_change(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return 100.0 * (value - base) / base


def generation_summaries(log: RunLog) -> dict[str, GenerationSummary]:
    """variant id -> generation summary (empty when the run has no generation tasks)."""
    study = log.study
    vs_ref, vs_base = _by_variant(log, "reference"), _by_variant(log, "baseline")
    out: dict[str, GenerationSummary] = {}
    for spec in study.models:
        base_id = spec.baseline_id
        base = _block(vs_ref[base_id]) if vs_ref.get(base_id) else None
        for level in spec.ordered_labels:
            vid = spec.variant_id(level)
            if not vs_ref.get(vid):
                continue
            block = _block(vs_ref[vid])
            tasks = sorted({r.task for r in vs_ref[vid]})
            mine, theirs = block.metrics, base.metrics if base else {}
            rep, base_rep = mine["repetition"].mean, _mean(theirs, "repetition")
            out[vid] = GenerationSummary(
                n=block.n,
                metrics=mine,
                tasks={t: _block([r for r in vs_ref[vid] if r.task == t]) for t in tasks},
                fidelity=_block(vs_base[vid]) if vs_base.get(vid) else None,
                key_avg_delta_pct=_pct_change(mine["key_avg"].mean, _mean(theirs, "key_avg")),
                repetition_collapse=bool(
                    rep is not None and base_rep and rep < COLLAPSE_RATIO * base_rep
                ),
            )
    return out


def _mean(metrics: dict[str, MetricCI], name: str) -> float | None:
    found = metrics.get(name)
    return None if found is None else found.mean


def item_metrics(log: RunLog, variant: str) -> dict[str, dict[str, float]]:
    """metric -> item key -> value, against the reference (for the paired statistics)."""
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for r in log.scores:
        if r.variant == variant and r.against == "reference":
            for m in ("key_avg", *KEY_METRICS):
                table[m][f"{r.task}|{r.item}"] = float(r.metrics[m])
    return dict(table)
