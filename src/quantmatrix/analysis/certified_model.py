"""The typed ``certified`` block of a variant: what the data certify about its change.

Built by :mod:`quantmatrix.analysis.certified` for every variant below its model's baseline;
dumped in ``analysis.json`` under each variant's ``certified``. Changes are vs the baseline on
the same items: the benchmark accuracy change in pp, the generation key average's change in %.
"""

from __future__ import annotations

from typing import Literal

from quantmatrix.analysis.frozen import Frozen


class ChangeInterval(Frozen):
    """A paired change and its two-sided ``1 - alpha`` interval."""

    unit: Literal["pp", "%"]
    change: float
    low: float
    high: float
    alpha: float
    method: str  # tango | newcombe | bonett-price (pp), delta (%), betting-cs (adaptive pp)
    n: int  # paired items (benchmark) or scored generation pairs
    # the bound the certified tier is the tier of: the worst lower end of this variant and
    # every level above it (the fixed sequence); what the guarantee states
    certified_low: float


class Tiers(Frozen):
    """Point, certified (the interval's lower end) and best-case (upper end) tier."""

    point: str
    certified: str
    best: str


class RateBound(Frozen):
    """A count out of ``n`` with its 95% Wilson interval (proportions)."""

    count: int
    n: int
    rate: float | None
    low: float | None
    high: float | None


class FlipsBlock(Frozen):
    """Correctness flips vs the baseline; ``|accuracy change| <= change_bound_pp``."""

    lost: RateBound  # right at the baseline, wrong here
    gained: RateBound  # wrong at the baseline, right here
    any: RateBound
    change_bound_pp: float | None  # the upper Wilson bound of the flip rate, in pp


class UnparsedBlock(Frozen):
    """Unparsed replies here vs at the baseline on the same items (McNemar, two-sided)."""

    base: RateBound
    variant: RateBound
    p_value: float
    significant: bool  # a rise with p < 0.05: the variant is held out of negligible


class CertifiedBlock(Frozen):
    """What the data certify about one variant vs its baseline."""

    baseline: str  # the baseline's variant id
    design: Literal["fixed", "adaptive"]
    bench: ChangeInterval | None  # None: no paired multiple-choice items
    bench_tiers: Tiers | None
    generation: ChangeInterval | None  # None: no scored generation pairs
    generation_tiers: Tiers | None
    point: str  # the worse of the two signals, after the unparsed hold-out
    certified: str
    best: str
    decided: bool  # certified == best
    note: str  # why a tier was held back ("" when none was)
    flips: FlipsBlock | None
    same_answer: RateBound | None
    unparsed: UnparsedBlock | None
    family_rule: str  # the family-wise rule in words
    items_used: int  # paired multiple-choice items the interval is built on
    items_fixed: int | None  # adaptive: the items a fixed design would have used; else None
