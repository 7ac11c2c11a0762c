"""Three tiers per variant from a paired interval of its change, and the family-wise rule.

For one signal (benchmark pp under ``decide.TIER_BOUNDS_BENCH``, or generation % under
``decide.TIER_BOUNDS_GEN``) a variant gets:

- the **point** tier: the published rule applied to the point change;
- the **certified** tier: the tier of the interval's lower end, the worst the data allow;
- the **best-case** tier: the tier of the upper end. It is *decided* when certified == best.

Family-wise rule (one model's ladder, one signal): the **fixed sequence down the ladder**.
A variant's certified tier uses the running minimum of the lower ends of it and every
higher-precision variant above it (walking down the ladder, a claim "change >= b" is made only
while every variant above also makes it). For a bound ``b`` an over-certification at ``b``
then needs the *first* variant whose true change is below ``b`` to have a lower end >= ``b``,
i.e. to miss its true change from above; so with ``B`` tier bounds the chance that *any*
variant of the ladder is certified better than its true tier is at most ``B`` times the
one-sided level of the lower end, whatever the true changes are. :func:`interval_alpha`
(``stopping/rule.py``, shared with the stopping rule) gives the two-sided alpha of each
interval that makes this at most ``family_alpha`` (with ``S`` signals combined by "the worse
of the two", the union bound adds ``S`` such families).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from quantmatrix.decide import SAFE_TIERS, TIERS, Bounds, tier_within, worse
from quantmatrix.stopping.rule import interval_alpha

__all__ = ["Interval", "TierRange", "certify_ladder", "combine", "interval_alpha", "tier_range"]

NEGLIGIBLE = TIERS[0]


@dataclass(frozen=True)
class Interval:
    """A point change and its two-sided interval (same unit as the bounds)."""

    change: float
    low: float
    high: float


@dataclass(frozen=True)
class TierRange:
    """Point, certified (worst the data allow) and best-case tier of one variant."""

    point: str
    certified: str
    best: str
    note: str = ""  # why a tier was held back, e.g. a significant rise in unparsed replies

    @property
    def decided(self) -> bool:
        return self.certified == self.best

    @property
    def certified_safe(self) -> bool:
        return self.certified in SAFE_TIERS


def tier_range(interval: Interval, bounds: Bounds) -> TierRange:
    """The three tiers of one interval under ``bounds``."""
    return TierRange(
        point=tier_within(interval.change, bounds),
        certified=tier_within(interval.low, bounds),
        best=tier_within(interval.high, bounds),
    )


def fixed_sequence_lows(lows: Sequence[float]) -> list[float]:
    """Running minimum of the lower ends down the ladder (highest precision first)."""
    out: list[float] = []
    for low in lows:
        out.append(low if not out else min(out[-1], low))
    return out


def certify_ladder(intervals: Sequence[Interval], bounds: Bounds) -> list[TierRange]:
    """Tier ranges of a model's variants below the baseline, in ladder order (highest
    precision first), under the fixed-sequence rule of this module."""
    lows = fixed_sequence_lows([iv.low for iv in intervals])
    return [
        tier_range(Interval(iv.change, low, iv.high), bounds)
        for iv, low in zip(intervals, lows, strict=True)
    ]


def combine(*ranges: TierRange | None) -> TierRange | None:
    """The worse of the signals, tier by tier (as published); None when none was measured."""
    found = [r for r in ranges if r is not None]
    if not found:
        return None
    return TierRange(
        point=worse(*(r.point for r in found)),
        certified=worse(*(r.certified for r in found)),
        best=worse(*(r.best for r in found)),
        note="; ".join(r.note for r in found if r.note),
    )


def hold_out_of_negligible(tiers: TierRange, reason: str) -> TierRange:
    """No tier of the range may be negligible (e.g. unparsed replies rose significantly):
    each negligible becomes the next tier, and ``reason`` is recorded."""

    def cap(name: str) -> str:
        return TIERS[1] if name == NEGLIGIBLE else name

    note = "; ".join(x for x in (tiers.note, reason) if x)
    return replace(
        tiers,
        point=cap(tiers.point),
        certified=cap(tiers.certified),
        best=cap(tiers.best),
        note=note,
    )
