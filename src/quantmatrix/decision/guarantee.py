"""What the data guarantee about a variant, in words, and how many more items would decide
an undecided tier (``recommend``, the report's answer and the executive summary)."""

from __future__ import annotations

import math

from quantmatrix.decide import TIER_BOUNDS_BENCH
from quantmatrix.decision.model import VariantRow
from quantmatrix.numfmt import MISSING
from quantmatrix.stopping.rule import FAMILY_ALPHA


def _memory_cost(row: VariantRow) -> str:
    mem = "memory unknown"
    if row.memory_bytes is not None:
        mem = f"{row.memory_bytes / 1e9:.2f} GB {row.memory_basis}"
    cost = MISSING if row.usd_per_m is None else f"${row.usd_per_m:.4f}/1M"
    return f"{mem}, {cost}"


def guarantee(row: VariantRow) -> str:
    """What the data guarantee about a variant, in one line (certified basis)."""
    base = row.baseline_level or "baseline"
    level = f"{100 * (1 - FAMILY_ALPHA):g}%"
    if row.is_baseline:
        said = f"the baseline ({row.bench_n or row.n} items)"
    else:
        said = (
            f"accuracy change vs {base} >= {row.bench_certified_pp:+.1f}pp "
            f"({level}, {row.bench_n} paired items)"
            if row.bench_certified_pp is not None
            else f"no paired accuracy change vs {base}"
        )
        if row.gen_low_pct is not None:
            said += f", generation key average >= {row.gen_low_pct:+.1f}% ({row.gen_n} pairs)"
    tiers = f"certified {row.certified_tier}"
    if row.decided is False:
        tiers += f", at best {row.best_tier}"
    return f"{said}, {_memory_cost(row)}; {tiers}"


def items_to_decide(row: VariantRow) -> int | None:
    """More paired items that would decide the benchmark tier, if the change stays where it
    is: each bound inside the interval must fall outside it, and a half-width shrinks as
    ``1 / sqrt(n)``, so the side of half-width ``h`` at distance ``d`` from a bound needs
    ``n (h / d)^2`` items. None when the change sits on a bound or is not known; 0 when
    decided."""
    c, lo, hi, n = row.bench_change_pp, row.bench_low_pp, row.bench_high_pp, row.bench_n
    if c is None or lo is None or hi is None or not n:
        return None
    need = float(n)
    for _, b in TIER_BOUNDS_BENCH:
        if not lo < b <= hi:
            continue
        d = abs(c - b)
        if d == 0:
            return None
        h = c - lo if b <= c else hi - c
        need = max(need, n * (h / d) ** 2)
    return math.ceil(need) - n


def undecided_line(row: VariantRow) -> str | None:
    """'M@Q4_K_M undecided: certified acceptable, at best negligible; about N more paired
    items would decide it (...)', or None when decided."""
    if row.decided is not False:
        return None
    head = f"{row.variant} undecided: certified {row.certified_tier}, at best {row.best_tier}"
    more = items_to_decide(row)
    if more is None:
        return f"{head}; its change sits on a tier bound, so more items may not decide it"
    if more == 0:
        return f"{head}; the benchmark is decided, the generation signal is not"
    return (
        f"{head}; about {more} more paired items would decide it (if the change stays at "
        f"{row.bench_change_pp:+.1f}pp, the interval's half-width shrinking as 1/sqrt(n))"
    )
