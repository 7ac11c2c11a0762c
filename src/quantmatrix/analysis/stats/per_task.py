"""Per-task paired statistics of each variant vs its baseline (published limitation L3).

Per benchmark task: the exact McNemar test and the accuracy change in pp with its Newcombe
paired interval (``paired.py``). Per generation task: the Wilcoxon signed-rank test of the key
average (as the adjacent-level tests use) and its % change with the delta-method interval.
Holm is applied within each family: one family per model and task kind (its benchmark tasks x
its variants; its generation tasks x its variants). The MMLU-vs-ARC differential
(``differential.py``) is its own family per model (Holm across the model's variants); a run
without both benchmarks has none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from quantmatrix.analysis.stats import multiplicity, paired, significance
from quantmatrix.analysis.stats.differential import METHOD, change_difference
from quantmatrix.analysis.stats.inputs import ModelLadder, VariantOutcomes

BENCHMARK, GENERATION = "benchmark", "generation"
KEY_METRIC = "key_avg"
DIFFERENTIAL = ("mmlu", "arc_challenge")
UNTASKED = "(no task)"
FAMILIES = (
    "Holm within each family: per model, its benchmark tasks x variants (exact McNemar), and "
    "its generation tasks x variants (Wilcoxon on the key average); the MMLU-vs-ARC "
    "differential is a family of its own per model (its variants)."
)


def _by_task(keys: Iterable[str]) -> dict[str, list[str]]:
    """Item keys ("task|item", sorted) grouped by task; keys with no task part (only
    hand-built ladders have them) form one task, :data:`UNTASKED`."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in sorted(keys):
        groups[key.split("|", 1)[0] if "|" in key else UNTASKED].append(key)
    return dict(groups)


def _counts(
    base: VariantOutcomes, var: VariantOutcomes, keys: Sequence[str]
) -> paired.PairedCounts:
    return paired.PairedCounts.of([base.correct[k] for k in keys], [var.correct[k] for k in keys])


def _head(var: VariantOutcomes, kind: str, task: str) -> dict[str, Any]:
    return {
        "model": var.model,
        "variant": var.variant,
        "level": var.level,
        "kind": kind,
        "task": task,
    }


def _benchmark(base: VariantOutcomes, var: VariantOutcomes, alpha: float) -> list[dict[str, Any]]:
    rows = []
    for task, keys in _by_task(base.shared_keys(var)).items():
        c = _counts(base, var, keys)
        iv = paired.interval_of_counts(c, alpha)
        p = significance.mcnemar_exact_p(c.both, c.lost, c.gained, c.neither)
        rows.append(
            {
                **_head(var, BENCHMARK, task),
                **{"n": c.n, "change": iv.change, "low": iv.low, "high": iv.high},
                **{"interval": iv.method, "test": "mcnemar (exact)", "p_value": p},
                "flips": {"correct_to_wrong": c.lost, "wrong_to_correct": c.gained},
            }
        )
    return rows


def _pct_change(a: Sequence[float], b: Sequence[float]) -> float | None:
    """``100 (mean(b) / mean(a) - 1)``; None when the baseline mean is not positive."""
    mean_a = sum(a) / len(a)
    return 100.0 * (sum(b) / len(b) / mean_a - 1.0) if mean_a > 0 else None


def _generation(base: VariantOutcomes, var: VariantOutcomes, alpha: float) -> list[dict[str, Any]]:
    rows = []
    for task, keys in _by_task(base.metric_keys(var, KEY_METRIC)).items():
        a, b = base.metric_vector(KEY_METRIC, keys), var.metric_vector(KEY_METRIC, keys)
        iv = paired.ratio_change_interval(a, b, alpha)
        change = iv.change if iv else _pct_change(a, b)
        rows.append(
            {
                **_head(var, GENERATION, task),
                **{"n": len(keys), "change": change},
                **{"low": iv.low if iv else None, "high": iv.high if iv else None},
                **{"interval": "delta", "test": "wilcoxon"},
                "p_value": significance.paired_continuous(a, b).wilcoxon_p_value,
                "flips": None,
            }
        )
    return rows


def _holm(rows: list[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """The rows with their Holm-adjusted p within this one family."""
    corr = multiplicity.correct_pvalues([float(r["p_value"]) for r in rows], alpha)
    return [
        {**r, "p_holm": p, "survives_holm": ok}
        for r, p, ok in zip(rows, corr.p_holm, corr.survives_holm, strict=True)
    ]


def _differential(
    base: VariantOutcomes, var: VariantOutcomes, alpha: float
) -> dict[str, Any] | None:
    groups = _by_task(base.shared_keys(var))
    task_a, task_b = DIFFERENTIAL
    if task_a not in groups or task_b not in groups:
        return None
    res = change_difference(
        _counts(base, var, groups[task_a]), _counts(base, var, groups[task_b]), alpha
    )
    if res is None:
        return None
    head = {"model": var.model, "variant": var.variant, "level": var.level}
    return {
        **head,
        **{"task_a": task_a, "task_b": task_b, "n_a": res.n_a, "n_b": res.n_b},
        **{"change_a": res.change_a, "change_b": res.change_b, "diff": res.diff},
        **{"low": res.low, "high": res.high, "z": res.z, "test": METHOD},
        "p_value": res.p_value,
    }


def per_task(ladders: Sequence[ModelLadder], alpha: float = 0.05) -> dict[str, Any]:
    """The ``PerTask`` part of the statistics, as plain dicts (validated by the caller)."""
    tests: list[dict[str, Any]] = []
    differential: list[dict[str, Any]] = []
    for ladder in ladders:
        base = ladder.baseline_variant
        variants = ladder.below_baseline()
        for kind in (_benchmark, _generation):
            tests += _holm([r for v in variants for r in kind(base, v, alpha)], alpha)
        found = [d for d in (_differential(base, v, alpha) for v in variants) if d]
        differential += _holm(found, alpha)
    return {"families": FAMILIES, "tests": tests, "differential": differential}
