"""The single entry point: the decision dict from an analysis (pure; report/ writes its files)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from quantmatrix.decision.cost import DEFAULT_CONTEXT_LENGTH, hourly_rate
from quantmatrix.decision.matrix import (
    cliff,
    diminishing_returns,
    ladders,
    memory_matrix,
    not_recommended,
    pareto_front,
    task_differential,
    tier_counts,
    variant_rows,
)
from quantmatrix.decision.memory import memory_rows
from quantmatrix.decision.summary import executive_summary

DEFAULT_MEMORY_TIERS_GB: tuple[float, ...] = (2, 4, 6, 8)


def clean(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become None; tuples become lists."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def build_decision(
    analysis: dict[str, Any],
    memory_tiers_gb: Sequence[float] = DEFAULT_MEMORY_TIERS_GB,
    cost_per_hour: float | None = None,
) -> dict[str, Any]:
    """Everything the decision sections show, JSON-serializable (no NaN), deterministic."""
    if not memory_tiers_gb or any(g <= 0 for g in memory_tiers_gb):
        raise ValueError("memory tiers must be a non-empty list of positive GB values")
    rows = variant_rows(analysis, cost_per_hour)
    by_model = ladders(rows)
    decision: dict[str, Any] = {
        "study": analysis.get("study"),
        "cost_per_hour": hourly_rate(analysis, cost_per_hour),
        "context_length": analysis.get("context_length") or DEFAULT_CONTEXT_LENGTH,
        "memory_tiers_gb": sorted(float(g) for g in memory_tiers_gb),
        "variants": rows,
        "matrix": memory_matrix(rows, memory_tiers_gb),
        "not_recommended": not_recommended(rows),
        "tier_counts": tier_counts(rows),
        "cliffs": [cliff(m, lad) for m, lad in by_model.items()],
        "diminishing_returns": [s for lad in by_model.values() for s in diminishing_returns(lad)],
        "task_differential": task_differential(rows),
        "pareto_cost": pareto_front(rows, "usd_per_m"),
        "pareto_memory": pareto_front(rows, "memory_bytes"),
        "memory": memory_rows(analysis),
    }
    decision["summary"] = executive_summary(decision)
    cleaned: dict[str, Any] = clean(decision)
    return cleaned
