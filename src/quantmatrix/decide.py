"""Quality tiers, as the published study drew them: the worse of benchmark pp and generation %."""

from __future__ import annotations

TIERS = ("negligible", "acceptable", "concerning", "unacceptable")
# lower bound of each tier, in pp (benchmark) or % (generation) change vs the baseline
BOUNDS = {"negligible": -3.0, "acceptable": -5.0, "concerning": -10.0}


def tier_of_delta(delta: float) -> str:
    for name in TIERS[:-1]:
        if delta >= BOUNDS[name]:
            return name
    return TIERS[-1]


def tier(bench_delta_pp: float | None, gen_delta_pct: float | None = None) -> str | None:
    """The worse of the two signals' tiers; None when neither was measured."""
    found = [tier_of_delta(d) for d in (bench_delta_pp, gen_delta_pct) if d is not None]
    if not found:
        return None
    return max(found, key=TIERS.index)
