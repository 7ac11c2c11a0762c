"""Agreement with the baseline as evidence: flips, the same-answer rate, unparsed replies.

``base[i]`` and ``var[i]`` describe the same item ``i`` at the baseline and at the variant.
Rates carry Wilson intervals (:func:`describe.wilson_ci`, statsmodels). Two facts the decision
may use: ``|accuracy change| <= flip rate`` (an item's correctness can only change if it
flipped), and ``flip rate <= 1 - same-answer rate`` (an item with the same answer keeps its
correctness); so the upper Wilson bound of the flip rate bounds ``|change|`` at that level.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from quantmatrix.analysis.stats.describe import wilson_ci
from quantmatrix.analysis.stats.significance import mcnemar_test


@dataclass(frozen=True)
class Rate:
    """A count out of ``n`` with its Wilson interval (proportions; None bounds when n = 0)."""

    count: int
    n: int
    low: float | None
    high: float | None

    @property
    def rate(self) -> float | None:
        return self.count / self.n if self.n else None


@dataclass(frozen=True)
class Flips:
    """Correctness flips vs the baseline."""

    correct_to_wrong: Rate
    wrong_to_correct: Rate
    any_flip: Rate

    @property
    def change_bound_pp(self) -> float | None:
        """Upper Wilson bound of the flip rate, in pp: a bound on ``|accuracy change|``."""
        high = self.any_flip.high
        return None if high is None else 100.0 * high


@dataclass(frozen=True)
class UnparsedRise:
    """Unparsed replies of the variant vs the baseline on the same items (McNemar exact or
    mid-p via :func:`significance.mcnemar_test`, two-sided)."""

    base: Rate
    var: Rate
    p_value: float
    significant: bool  # more unparsed than the baseline and p < alpha

    @property
    def reason(self) -> str:
        if not self.significant:
            return ""
        return (
            f"unparsed replies rose from {self.base.count}/{self.base.n} to "
            f"{self.var.count}/{self.var.n} (McNemar p = {self.p_value:.3g})"
        )


def rate(count: int, n: int, alpha: float = 0.05) -> Rate:
    ci = wilson_ci(count, n, alpha)
    return Rate(count, n, None if ci is None else ci[0], None if ci is None else ci[1])


def _check(base: Sequence[object], var: Sequence[object]) -> None:
    if len(base) != len(var):
        raise ValueError(f"paired samples differ in length: {len(base)} vs {len(var)}")


def flips(base: Sequence[bool], var: Sequence[bool], alpha: float = 0.05) -> Flips:
    """Correct->wrong, wrong->correct and any flip, each over all paired items."""
    _check(base, var)
    lost = sum(1 for a, b in zip(base, var, strict=True) if a and not b)
    gained = sum(1 for a, b in zip(base, var, strict=True) if b and not a)
    n = len(base)
    return Flips(rate(lost, n, alpha), rate(gained, n, alpha), rate(lost + gained, n, alpha))


def same_answer_rate(
    base: Sequence[Hashable | None], var: Sequence[Hashable | None], alpha: float = 0.05
) -> Rate:
    """Share of items where the variant gave the baseline's answer (None = unparsed, and two
    unparsed replies do not count as the same answer)."""
    _check(base, var)
    same = sum(1 for a, b in zip(base, var, strict=True) if a is not None and a == b)
    return rate(same, len(base), alpha)


def unparsed_rise(
    base_unparsed: Sequence[bool], var_unparsed: Sequence[bool], alpha: float = 0.05
) -> UnparsedRise:
    """Whether the variant's replies were unparsed significantly more often than the
    baseline's on the same items; a significant rise keeps a variant out of negligible."""
    _check(base_unparsed, var_unparsed)
    n = len(base_unparsed)
    base_count, var_count = sum(map(bool, base_unparsed)), sum(map(bool, var_unparsed))
    p_value = mcnemar_test(base_unparsed, var_unparsed).p_value if n else 1.0
    return UnparsedRise(
        rate(base_count, n, alpha),
        rate(var_count, n, alpha),
        p_value,
        var_count > base_count and p_value < alpha,
    )
