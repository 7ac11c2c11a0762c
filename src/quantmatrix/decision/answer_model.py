"""The typed answer across models (``decision/answer.py`` and ``decision/cross.py`` fill it):
per memory budget the pick, the runner-up and the comparisons with the other models."""

from __future__ import annotations

from typing import Literal

from quantmatrix.analysis.frozen import Frozen

Verdict = Literal["better", "worse", "equivalent", "not decided"]
ANSWER_BUDGETS_GB: tuple[float, ...] = (1.0, 2.0, 4.0)


class CrossComparison(Frozen):
    """``pick`` against the best variant of another model that fits the same budget: the
    accuracy difference pick minus other (pp) on the items both answered, and its verdict
    (``cross.verdict``)."""

    pick: str
    other: str
    pick_memory_bytes: int | float | None
    other_memory_bytes: int | float | None
    other_recommended: bool  # False: the best of the other model that fits is not recommended
    other_tier: str | None  # the other's tier on the decision's basis
    n: int
    change_pp: float
    low_pp: float
    high_pp: float
    alpha: float
    method: str  # tango | betting-cs
    verdict: Verdict


class BudgetAnswer(Frozen):
    """What to run on one memory budget (``limit_gb`` None: any size, the largest that fits)."""

    label: str
    limit_gb: float | None
    fits: int  # variants within the budget
    recommended: int  # of those, recommended (cross.recommended_on)
    admitted: tuple[str, ...]  # of those, recommended only across models (cross.admitted)
    pick: str | None
    runner_up: str | None
    tie: tuple[str, ...]  # the variants the data cannot separate from the pick (best first)
    comparisons: tuple[CrossComparison, ...]  # the pick vs each other model's best that fits
    smallest: str | None  # nothing fits: the smallest variant of known memory
