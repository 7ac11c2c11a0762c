"""Cross-model comparisons as the decision reads them: the analysis's paired intervals
(``analysis/cross_model.py``) looked up in either orientation, their verdict, and the two
ways they enter the pick rule (``choose.py``):

- **admitted across models**: a tier is relative to the variant's own baseline, so on a budget
  where no safe variant of a model fits, its best may still be the best thing to run. A
  variant that fits, whose certified tier is not safe and no safe variant of whose model fits,
  is recommended anyway when it is certified more accurate than every safe variant that fits
  (each of another model) -- whatever it lost to quantization, it is certified better than
  every alternative the tier rule allows (:func:`admitted`);
- **beaten**: a variant certified less accurate than another candidate of another model is
  never picked over it (``choose.choose``).

Both need at least one comparison (``CrossIndex`` non-empty); an analysis of one model gives
the rule as before."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from quantmatrix.analysis.cross_model_model import CrossModelPair
from quantmatrix.decide import TIER_BOUNDS_BENCH
from quantmatrix.decision.answer_model import CrossComparison, Verdict
from quantmatrix.decision.model import Basis, VariantRow

# an interval within +-this (the negligible tier's bound, pp) says the two are equivalent
EQUIVALENT_PP = -TIER_BOUNDS_BENCH[0][1]


def verdict(low: float, high: float) -> Verdict:
    """Better / worse when the interval excludes 0; equivalent when it lies within
    +-:data:`EQUIVALENT_PP`; else not decided."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    if low > -EQUIVALENT_PP and high < EQUIVALENT_PP:
        return "equivalent"
    return "not decided"


class CrossIndex:
    """The analysis's cross-model pairs by (a, b) in either orientation."""

    def __init__(self, pairs: Iterable[CrossModelPair] = ()) -> None:
        self._pairs = {(p.a, p.b): p for p in pairs}

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def get(self, a: str, b: str) -> CrossModelPair | None:
        """accuracy(a) - accuracy(b) with its interval, or None when not compared."""
        found = self._pairs.get((a, b))
        if found is not None:
            return found
        back = self._pairs.get((b, a))
        if back is None:
            return None
        return back.model_copy(
            update={"a": a, "b": b, "a_only": back.b_only, "b_only": back.a_only,
                    "change": -back.change, "low": -back.high, "high": -back.low}
        )  # fmt: skip

    def separable(self, a: str, b: str) -> bool | None:
        """Whether the paired interval of two variants of different models excludes 0
        (None: not compared)."""
        p = self.get(a, b)
        return None if p is None else verdict(p.low, p.high) in ("better", "worse")

    def compare(
        self, pick: VariantRow, other: VariantRow, recommended: bool, tier: str | None
    ) -> CrossComparison | None:
        p = self.get(pick.variant, other.variant)
        if p is None:
            return None
        return CrossComparison(
            pick=pick.variant, other=other.variant, pick_memory_bytes=pick.memory_bytes,
            other_memory_bytes=other.memory_bytes, other_recommended=recommended,
            other_tier=tier, n=p.n, change_pp=p.change, low_pp=p.low, high_pp=p.high,
            alpha=p.alpha, method=p.method, verdict=verdict(p.low, p.high),
        )  # fmt: skip

    def better(self, a: str, b: str) -> bool:
        """Whether ``a`` is certified more accurate than ``b`` (different models)."""
        p = self.get(a, b)
        return p is not None and p.low > 0


def admitted(
    inside: Sequence[VariantRow], safe: Sequence[VariantRow], index: CrossIndex
) -> list[VariantRow]:
    """The variants among ``inside`` (those that fit) that are not ``safe`` but are recommended
    across models (see the module docstring); in ``inside``'s order."""
    if not index or not safe:
        return []
    safe_ids = {r.variant for r in safe}
    models_safe = {r.model for r in safe}
    return [
        r
        for r in inside
        if r.variant not in safe_ids
        and r.model not in models_safe
        and all(index.better(r.variant, s.variant) for s in safe)
    ]


def recommended_on(
    inside: Sequence[VariantRow], basis: Basis, index: CrossIndex | None = None
) -> list[VariantRow]:
    """Of the variants that fit a budget, those recommended: tier safe on ``basis``, and,
    on the certified basis, those admitted across models (:func:`admitted`)."""
    safe = [r for r in inside if r.safe_on(basis)]
    if basis != "certified" or index is None:
        return safe
    extra = {r.variant for r in admitted(inside, safe, index)}
    return [r for r in inside if r in safe or r.variant in extra]
