"""Direct answers: which variant to run on a memory budget, and what is known about one variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from quantmatrix.analysis.model import Analysis
from quantmatrix.decide import TIERS
from quantmatrix.decision import DecisionError
from quantmatrix.decision.cost import hourly_rate
from quantmatrix.decision.matrix import fits, variant_rows
from quantmatrix.decision.memory import memory_row
from quantmatrix.decision.model import CostFacts, Validation, VariantRow
from quantmatrix.numfmt import MISSING, num, pct, signed

Objective = Literal["quality", "cost", "speed"]
OBJECTIVES: tuple[str, ...] = ("quality", "cost", "speed")
RUNNERS_UP = 2


@dataclass(frozen=True)
class Pick:
    variant: str
    why: str


@dataclass(frozen=True)
class Recommendation:
    memory_gb: float
    objective: str
    best: Pick | None
    runners_up: list[Pick] = field(default_factory=list)
    reason: str = ""  # "nothing qualifies: ..." when best is None


def _score(row: VariantRow, conservative: bool) -> float | None:
    value = row.ci_low if conservative else row.accuracy
    return None if value is None else float(value)


def _rejection(
    row: VariantRow, memory_gb: float, min_acc: float | None, max_tier: str, cons: bool
) -> str | None:
    """Why a row does not qualify (the first failed criterion), or None when it does."""
    if row.memory_bytes is None:
        return "memory unknown"
    if not fits(row, memory_gb):
        return f"need more than {memory_gb:g} GB"
    if row.tier is None:
        return "tier unknown (no baseline)"
    if TIERS.index(row.tier) > TIERS.index(max_tier):
        return f"worse than {max_tier}"
    score = _score(row, cons)
    if min_acc is not None and (score is None or score < min_acc):
        return f"{'lower CI bound' if cons else 'accuracy'} below {pct(min_acc)}"
    return None


def _key(row: VariantRow, objective: str, cons: bool) -> tuple[float, float, str]:
    inf = float("inf")
    quality = -(_score(row, cons) or 0.0)
    cost = row.usd_per_m if row.usd_per_m is not None else inf
    speed = -(row.decode_tps or 0.0)
    if objective == "cost":
        return cost, quality, row.variant
    if objective == "speed":
        return speed, quality, row.variant
    return quality, cost, row.variant


def describe(row: VariantRow, conservative: bool = False) -> str:
    """One line of numbers about a variant: accuracy, delta, tier, $/1M, tok/s, memory."""
    acc = f"accuracy {pct(row.accuracy)}"
    if conservative:
        acc += f" (lower CI bound {pct(row.ci_low)})"
    base = row.baseline_level or "baseline"
    mem = "memory unknown"
    if row.memory_bytes is not None:
        mem = f"{row.memory_bytes / 1e9:.2f} GB {row.memory_basis}"
    cost = MISSING if row.usd_per_m is None else f"${row.usd_per_m:.4f}/1M"
    return (
        f"{acc}, {signed(row.delta_pp)}pp vs {base} ({row.tier or 'tier unknown'}), "
        f"{cost}, {num(row.decode_tps)} tok/s, {mem}"
    )


_LEAD = {"quality": "most accurate", "cost": "cheapest", "speed": "fastest"}


def _nothing(rejected: dict[str, int], total: int, memory_gb: float) -> str:
    if total == 0:
        return "nothing qualifies: the run has no variants"
    parts = ", ".join(f"{n} {why}" for why, n in sorted(rejected.items()))
    return f"nothing qualifies on {memory_gb:g} GB: of {total} variants, {parts}"


def recommend(
    analysis: Analysis,
    memory_gb: float,
    min_accuracy: float | None = None,
    max_tier: str = "acceptable",
    objective: str = "quality",
    conservative: bool = False,
    cost_per_hour: float | None = None,
) -> Recommendation:
    """The best variant that fits ``memory_gb`` and the quality bars, with runners-up."""
    if max_tier not in TIERS:
        raise DecisionError(f"unknown tier {max_tier!r}; choose one of {', '.join(TIERS)}")
    if objective not in OBJECTIVES:
        raise DecisionError(f"unknown objective {objective!r}; choose one of quality, cost, speed")
    if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
        raise DecisionError(f"min accuracy {min_accuracy:g} is not a proportion; write 0.6 for 60%")
    rows = variant_rows(analysis, cost_per_hour)
    rejected: dict[str, int] = {}
    ok = []
    for r in rows:
        why = _rejection(r, memory_gb, min_accuracy, max_tier, conservative)
        if why is None:
            ok.append(r)
        else:
            rejected[why] = rejected.get(why, 0) + 1
    if not ok:
        return Recommendation(
            memory_gb, objective, None, [], _nothing(rejected, len(rows), memory_gb)
        )
    ok.sort(key=lambda r: _key(r, objective, conservative))
    picks = [
        Pick(
            r.variant,
            f"{'' if i == 0 else f'#{i + 1} '}{_LEAD[objective]} of "
            f"{len(ok)} qualifying on {memory_gb:g} GB: {describe(r, conservative)}",
        )
        for i, r in enumerate(ok[: 1 + RUNNERS_UP])
    ]
    return Recommendation(memory_gb, objective, picks[0], picks[1:], "")


def validate(analysis: Analysis, variant: str, cost_per_hour: float | None = None) -> Validation:
    """What the run says about one variant: tier, equivalence tests, cost, memory."""
    rows = {r.variant: r for r in variant_rows(analysis, cost_per_hour)}
    row, summary = rows.get(variant), analysis.summary(variant)
    if row is None or summary is None:
        known = ", ".join(rows) or "none"
        raise DecisionError(f"unknown variant {variant!r}; this run has: {known}")
    return Validation(
        variant=variant,
        tier=row.tier or "unknown (no baseline)",
        delta_pp=row.delta_pp,
        gen_delta_pct=row.gen_delta_pct,
        accuracy=row.accuracy,
        ci=(row.ci_low, row.ci_high),
        equivalence=tuple(r for r in analysis.statistics.equivalence if r.variant == variant),
        cost=CostFacts(
            cost_per_hour=hourly_rate(analysis, cost_per_hour),
            usd_per_m=row.usd_per_m,
            savings_pct=row.savings_pct,
            cheaper_x=row.cheaper_x,
            baseline_level=row.baseline_level,
        ),
        memory=memory_row(summary),
        summary=describe(row),
    )
