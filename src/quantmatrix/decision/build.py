"""The single entry point: :func:`decide`, the decision from an analysis and a policy (pure;
``report/`` writes its files)."""

from __future__ import annotations

from quantmatrix.analysis.model import Analysis
from quantmatrix.decision.answer import budget_answers
from quantmatrix.decision.cost import DEFAULT_CONTEXT_LENGTH, hourly_rate
from quantmatrix.decision.cross import CrossIndex
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
from quantmatrix.decision.model import Decision, Policy
from quantmatrix.decision.summary import executive_summary, tier_lines


def decide(analysis: Analysis, policy: Policy) -> Decision:
    """Everything the decision sections show, deterministic (``Policy()``: the default memory
    budgets, priced at the run's own rate)."""
    rows = variant_rows(analysis, policy.cost_per_hour)
    by_model = ladders(rows)
    index = CrossIndex(analysis.cross_model)
    matrix = memory_matrix(rows, policy.memory_tiers_gb, policy.basis, index)
    cliffs = [cliff(m, lad) for m, lad in by_model.items()]
    memory = memory_rows(analysis)
    counts = tier_counts(rows)
    summary = executive_summary(rows, matrix, cliffs, memory, counts, policy.basis, index)
    return Decision(
        study=analysis.study,
        cost_per_hour=hourly_rate(analysis, policy.cost_per_hour),
        context_length=analysis.context_length or DEFAULT_CONTEXT_LENGTH,
        memory_tiers_gb=tuple(sorted(float(g) for g in policy.memory_tiers_gb)),
        variants=tuple(rows),
        matrix=tuple(matrix),
        not_recommended=tuple(not_recommended(rows, policy.basis)),
        tier_counts=counts,
        cliffs=tuple(cliffs),
        diminishing_returns=tuple(s for lad in by_model.values() for s in diminishing_returns(lad)),
        task_differential=tuple(task_differential(rows)),
        pareto_cost=tuple(pareto_front(rows, "usd_per_m")),
        pareto_memory=tuple(pareto_front(rows, "memory_bytes")),
        memory=tuple(memory),
        summary=tuple(summary),
        basis=policy.basis,
        answer=tuple(tier_lines(matrix, {r.variant: r for r in rows}, policy.basis, index)),
        budgets=tuple(budget_answers(rows, policy.answer_budgets_gb, index, policy.basis)),
    )
