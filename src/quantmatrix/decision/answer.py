"""The answer across models, per memory budget: the pick of :func:`choose.choose` among every
model's variants that fit and are recommended, the runner-up, and the pick against the best
variant of each other model that fits the same budget (``decision/cross.py``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from quantmatrix.decision import GB
from quantmatrix.decision.answer_model import BudgetAnswer, CrossComparison
from quantmatrix.decision.choose import choose
from quantmatrix.decision.cross import CrossIndex, recommended_on
from quantmatrix.decision.matrix import fits
from quantmatrix.decision.model import Basis, VariantRow


def cross_comparisons(
    pick: VariantRow,
    fitting: Sequence[VariantRow],
    qualifying: Collection[str],
    index: CrossIndex,
    basis: Basis,
) -> list[CrossComparison]:
    """``pick`` vs the best variant of each other model among ``fitting``: the best of its
    ``qualifying`` ones (variant ids), else the best of those that fit (marked as not
    recommended); models in first-seen order."""
    out = []
    for model in dict.fromkeys(r.model for r in fitting):
        if model == pick.model:
            continue
        mine = [r for r in fitting if r.model == model]
        ok = [r for r in mine if r.variant in qualifying]
        best = choose(ok or mine, "quality", basis, index=index).ranked[0]
        found = index.compare(pick, best, bool(ok), best.tier_on(basis))
        if found is not None:
            out.append(found)
    return out


def budget_answer(
    rows: Sequence[VariantRow],
    limit_gb: float | None,
    label: str,
    index: CrossIndex,
    basis: Basis,
) -> BudgetAnswer:
    inside = [r for r in rows if fits(r, limit_gb)]
    ok = recommended_on(inside, basis, index)
    extra = tuple(r.variant for r in ok if not r.safe_on(basis))
    known = [r for r in rows if r.memory_bytes is not None]
    smallest = min(known, key=lambda r: (r.memory_bytes or 0, r.variant)) if known else None
    if not ok:
        return BudgetAnswer(
            label=label, limit_gb=limit_gb, fits=len(inside), recommended=0, admitted=(), pick=None,
            runner_up=None, tie=(), comparisons=(),
            smallest=None if inside or smallest is None else smallest.variant,
        )  # fmt: skip
    choice = choose(ok, "quality", basis, index=index)
    pick = choice.ranked[0]
    across = cross_comparisons(pick, inside, {r.variant for r in ok}, index, basis)
    return BudgetAnswer(
        label=label, limit_gb=limit_gb, fits=len(inside), recommended=len(ok), admitted=extra,
        pick=pick.variant,
        runner_up=choice.ranked[1].variant if len(choice.ranked) > 1 else None,
        tie=tuple(r.variant for r in choice.tie if r is not pick),
        comparisons=tuple(across), smallest=None,
    )  # fmt: skip


def any_size_label(rows: Sequence[VariantRow]) -> str:
    """'any size (all fit in 3.6 GB)': the open budget, with what the largest variant needs."""
    known = [float(r.memory_bytes) for r in rows if r.memory_bytes is not None]
    return f"any size (all fit in {max(known) / GB:.2g} GB)" if known else "any size"


def budget_answers(
    rows: Sequence[VariantRow], budgets_gb: Sequence[float], index: CrossIndex, basis: Basis
) -> list[BudgetAnswer]:
    """One answer per budget, smallest first, then the open one: the largest that fits."""
    out = [budget_answer(rows, g, f"{g:g} GB", index, basis) for g in sorted(set(budgets_gb))]
    return [*out, budget_answer(rows, None, any_size_label(rows), index, basis)]
