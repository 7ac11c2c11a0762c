"""The one rule that picks a variant from those that qualify: ``recommend``, the decision
matrix's answer and the executive summary all call :func:`choose`.

Under the certified basis, variants are ranked by the worst accuracy the data allow (the
baseline's accuracy plus the lower end of the paired change interval); the variants whose
ranges overlap the top one's cannot be separated by the data and are a **tie**, broken by the
objective. Ranges: within one model, the baseline's accuracy plus each paired change interval
(so a variant ties with its baseline when its interval contains 0, and two variants tie when
their intervals overlap); a variant without a certified block uses the 95% Wilson interval of
its accuracy. Across models, two variants tie when the paired interval of their difference on
the items both answered contains 0 (``decision/cross.py``, given a :class:`CrossIndex`); without
one (an analysis without cross-model pairs), when their Wilson intervals overlap; and a row
certified less accurate than another of another model (``CrossIndex.better``) is ranked
after every row that is not. Under the point basis the qualifying variants are ranked by the
objective directly, as published (no ties).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from quantmatrix.decision.cross import CrossIndex
from quantmatrix.decision.model import Basis, VariantRow

Objective = Literal["quality", "cost", "speed", "memory", "value"]
OBJECTIVES: tuple[str, ...] = ("quality", "cost", "speed", "memory", "value")
TIE_RULE = (
    "variants whose accuracy ranges overlap (within a model: the baseline's accuracy plus "
    "the paired change interval; across models: the paired interval of their difference "
    "contains 0, or, without one, the 95% Wilson intervals overlap) are a tie"
)
INF = float("inf")


@dataclass(frozen=True)
class Choice:
    """The ranked qualifying rows (best first) and the tie the best was picked from."""

    ranked: list[VariantRow]
    tie: list[VariantRow]  # the rows the data cannot separate from the top one (best first)


def score(row: VariantRow, basis: Basis, conservative: bool = False) -> float | None:
    """The accuracy ranked on: the worst the data allow (certified), or the point accuracy
    (its Wilson lower bound when ``conservative``)."""
    if basis == "point":
        return row.ci_low if conservative else row.accuracy
    found = row.accuracy_range(basis)
    return None if found is None else found[0]


def _value(row: VariantRow, basis: Basis, conservative: bool) -> float:
    acc, usd = score(row, basis, conservative), row.usd_per_m
    return acc / usd if acc is not None and usd else 0.0


def objective_key(
    objective: str, basis: Basis, conservative: bool = False
) -> Callable[[VariantRow], tuple[float, ...]]:
    """Sort key of ``objective`` (smaller first); quality (cost, for quality) breaks its ties."""

    def quality(row: VariantRow) -> float:
        return -(score(row, basis, conservative) or 0.0)

    def cost(row: VariantRow) -> float:
        return row.usd_per_m if row.usd_per_m is not None else INF

    figures: dict[str, Callable[[VariantRow], float]] = {
        "quality": quality,
        "cost": cost,
        "speed": lambda r: -(r.decode_tps or 0.0),
        "memory": lambda r: float(r.memory_bytes) if r.memory_bytes is not None else INF,
        "value": lambda r: -_value(r, basis, conservative),
    }
    first = figures[objective]
    second = cost if objective == "quality" else quality
    return lambda r: (first(r), second(r))


def separable(a: VariantRow, b: VariantRow, basis: Basis, index: CrossIndex | None = None) -> bool:
    """Whether the data separate two variants (their accuracy ranges do not overlap; across
    models, the paired interval of their difference excludes 0 when ``index`` has it)."""
    same_model = a.model == b.model
    if not same_model and index is not None and basis == "certified":
        paired = index.separable(a.variant, b.variant)
        if paired is not None:
            return paired
    ra = a.accuracy_range(basis if same_model else "point")
    rb = b.accuracy_range(basis if same_model else "point")
    if ra is None or rb is None:
        return False
    return ra[1] < rb[0] or rb[1] < ra[0]


def choose(
    rows: Sequence[VariantRow],
    objective: str,
    basis: Basis,
    conservative: bool = False,
    index: CrossIndex | None = None,
) -> Choice:
    """Rank the qualifying ``rows``: certified basis, the tie with the top-quality row broken
    by ``objective``, then the rest by quality; point basis, by ``objective`` alone."""
    by_objective = objective_key(objective, basis, conservative)
    if basis == "point" or not rows:
        return Choice(sorted(rows, key=lambda r: (*by_objective(r), r.variant)), [])
    by_quality = objective_key("quality", basis)
    beaten = _beaten(rows, index)
    top = min(rows, key=lambda r: (r.variant in beaten, *by_quality(r), r.variant))
    out_of_tie = set() if top.variant in beaten else beaten
    tie = sorted(
        (r for r in rows if r.variant not in out_of_tie and not separable(r, top, basis, index)),
        key=lambda r: (*by_objective(r), r.variant),
    )
    rest = sorted(
        (r for r in rows if r not in tie),
        key=lambda r: (r.variant in beaten, *by_quality(r), r.variant),
    )
    return Choice([*tie, *rest], tie if len(tie) > 1 else [])


def _beaten(rows: Sequence[VariantRow], index: CrossIndex | None) -> set[str]:
    """The rows certified less accurate than another row of another model."""
    if not index:
        return set()
    return {
        r.variant
        for r in rows
        if any(s.model != r.model and index.better(s.variant, r.variant) for s in rows)
    }
