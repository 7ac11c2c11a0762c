"""Generation quality per variant, from the scored rows of the run log (pure functions).

Per variant: each metric's mean with a 95% t-interval (statsmodels ``DescrStatsW``), the key
metric average (mean of BERTScore F1, coherence and ROUGE-L) and its change in % vs the
baseline, a per-task breakdown, fidelity to the baseline's own answers, and a flag when
repetition collapses (falls well below the baseline's).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from statsmodels.stats.weightstats import DescrStatsW

from quantmatrix.runlog import RunLog, ScoreRow

KEY_METRICS = ("bertscore_f1", "coherence", "rouge_l")
METRICS = ("key_avg", *KEY_METRICS, "bleu", "exact_match", "length_ratio", "repetition")
# repetition below this share of the baseline's flags a collapse (the published study saw
# 0.992 -> 0.702 at Q2_K)
COLLAPSE_RATIO = 0.9


def mean_ci(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "ci_low": None, "ci_high": None}
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if arr.size < 2 or float(arr.std()) == 0.0:
        return {"mean": mean, "ci_low": mean, "ci_high": mean}
    low, high = DescrStatsW(arr).tconfint_mean(alpha=0.05)
    return {"mean": mean, "ci_low": float(low), "ci_high": float(high)}


def _by_variant(log: RunLog, against: str) -> dict[str, list[ScoreRow]]:
    rows: dict[str, list[ScoreRow]] = defaultdict(list)
    for r in log.scores:
        if r.against == against:
            rows[r.variant].append(r)
    return rows


def _block(rows: list[ScoreRow]) -> dict[str, Any]:
    ordered = sorted(rows, key=lambda r: (r.task, r.item))
    return {
        "n": len(ordered),
        "metrics": {m: mean_ci([r.metrics[m] for r in ordered]) for m in METRICS},
    }


def _pct_change(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return 100.0 * (value - base) / base


def generation_summaries(log: RunLog) -> dict[str, dict[str, Any]]:
    """variant id -> generation block (empty when the run has no generation tasks)."""
    study = log.study
    vs_ref, vs_base = _by_variant(log, "reference"), _by_variant(log, "baseline")
    out: dict[str, dict[str, Any]] = {}
    for spec in study.models:
        base_id = f"{spec.name}@{spec.baseline_level}"
        base = _block(vs_ref[base_id]) if vs_ref.get(base_id) else None
        for level in spec.ordered_levels:
            vid = f"{spec.name}@{level}"
            if not vs_ref.get(vid):
                continue
            block = _block(vs_ref[vid])
            tasks = sorted({r.task for r in vs_ref[vid]})
            block["tasks"] = {t: _block([r for r in vs_ref[vid] if r.task == t]) for t in tasks}
            block["fidelity"] = _block(vs_base[vid]) if vs_base.get(vid) else None
            mine = block["metrics"]
            theirs = base["metrics"] if base else {}
            block["key_avg_delta_pct"] = _pct_change(
                mine["key_avg"]["mean"], (theirs.get("key_avg") or {}).get("mean")
            )
            rep, base_rep = mine["repetition"]["mean"], (theirs.get("repetition") or {}).get("mean")
            block["repetition_collapse"] = bool(
                rep is not None and base_rep and rep < COLLAPSE_RATIO * base_rep
            )
            out[vid] = block
    return out


def item_metrics(log: RunLog, variant: str) -> dict[str, dict[str, float]]:
    """metric -> item key -> value, against the reference (for the paired statistics)."""
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for r in log.scores:
        if r.variant == variant and r.against == "reference":
            for m in ("key_avg", *KEY_METRICS):
                table[m][f"{r.task}|{r.item}"] = float(r.metrics[m])
    return dict(table)
