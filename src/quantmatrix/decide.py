"""Quality tiers, as the published study drew them: the worse of benchmark pp and generation %.

The rule is defined once, in :data:`TIER_BOUNDS`; the tier names, the safe tiers, the report's
description of the rule and the plots' bands are all derived from it, so a changed bound
changes them together.
"""

from __future__ import annotations

# (tier, lower bound): a change vs the baseline, in pp (benchmark) or % (generation), at or
# above the bound is in that tier; best tier first. Anything below the last bound is WORST.
TIER_BOUNDS: tuple[tuple[str, float], ...] = (
    ("negligible", -3.0),
    ("acceptable", -5.0),
    ("concerning", -10.0),
)
WORST = "unacceptable"
TIERS = (*(name for name, _ in TIER_BOUNDS), WORST)
SAFE_TIERS = TIERS[:2]  # recommendable: negligible and acceptable


# Per-signal bounds, as published: benchmark accuracy in pp, the generation key average in %.
Bounds = tuple[tuple[str, float], ...]
TIER_BOUNDS_BENCH: Bounds = TIER_BOUNDS
TIER_BOUNDS_GEN: Bounds = (
    ("negligible", -3.0),
    ("acceptable", -8.0),
    ("concerning", -15.0),
)


def tier_of_delta(delta: float) -> str:
    return tier_within(delta, TIER_BOUNDS)


def tier_within(delta: float, bounds: Bounds) -> str:
    """The tier of a change under ``bounds`` (same names and order as TIER_BOUNDS)."""
    for name, bound in bounds:
        if delta >= bound:
            return name
    return WORST


def worse(*tiers: str) -> str:
    """The worst of some tier names."""
    return max(tiers, key=TIERS.index)


def tier(bench_delta_pp: float | None, gen_delta_pct: float | None = None) -> str | None:
    """The worse of the two signals' tiers (benchmark pp under TIER_BOUNDS_BENCH, generation %
    under TIER_BOUNDS_GEN); None when neither was measured."""
    found = [
        tier_within(d, bounds)
        for d, bounds in ((bench_delta_pp, TIER_BOUNDS_BENCH), (gen_delta_pct, TIER_BOUNDS_GEN))
        if d is not None
    ]
    if not found:
        return None
    return worse(*found)


def bounds_text(bounds: Bounds) -> str:
    """One signal's bounds in words: 'negligible >= -3, ..., else unacceptable'."""
    parts = [f"{name} >= {bound:g}" for name, bound in bounds]
    return ", ".join([*parts, f"else {WORST}"])


def rule_text() -> str:
    """The rule in words, for the report: both signals' bounds."""
    return (
        f"benchmark Δ (pp): {bounds_text(TIER_BOUNDS_BENCH)}; "
        f"generation key-average Δ (%): {bounds_text(TIER_BOUNDS_GEN)}"
    )


def safe_text() -> str:
    """The safe tiers in words: 'negligible or acceptable'."""
    return " or ".join(SAFE_TIERS)
