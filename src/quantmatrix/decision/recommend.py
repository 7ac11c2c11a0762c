"""Direct answers: which variant to run on a memory budget, and what is known about one variant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from quantmatrix.analysis.model import Analysis
from quantmatrix.decide import TIERS, WORST
from quantmatrix.decision import DecisionError
from quantmatrix.decision.answer import cross_comparisons
from quantmatrix.decision.answer_model import CrossComparison
from quantmatrix.decision.choose import OBJECTIVES, TIE_RULE, choose, score
from quantmatrix.decision.context_memory import at_context
from quantmatrix.decision.cost import hourly_rate
from quantmatrix.decision.cross import CrossIndex, admitted
from quantmatrix.decision.guarantee import guarantee, undecided_line
from quantmatrix.decision.matrix import fits, variant_rows
from quantmatrix.decision.memory import memory_row
from quantmatrix.decision.model import BASES, Basis, CostFacts, Validation, VariantRow
from quantmatrix.numfmt import MISSING, num, pct, signed

RUNNERS_UP = 2


@dataclass(frozen=True)
class Pick:
    variant: str
    why: str


@dataclass(frozen=True)
class Recommendation:
    memory_gb: float | None
    objective: str
    best: Pick | None
    runners_up: list[Pick] = field(default_factory=list)
    reason: str = ""  # "nothing qualifies: ..." when best is None
    basis: str = "certified"
    tie: list[str] = field(default_factory=list)  # variants the data cannot separate (best first)
    tie_note: str = ""  # the tie in words, and what broke it
    undecided: list[str] = field(default_factory=list)  # undecided tiers, items to decide them
    # the pick vs the best of each other model that fits the budget (paired, on shared items)
    across: list[CrossComparison] = field(default_factory=list)
    admitted: list[str] = field(default_factory=list)  # recommended only across models


def _score(row: VariantRow, conservative: bool, basis: Basis) -> float | None:
    if basis == "certified":
        return score(row, basis)
    value = row.ci_low if conservative else row.accuracy
    return None if value is None else float(value)


@dataclass(frozen=True)
class Bars:
    """What a variant must meet to qualify."""

    memory_gb: float | None
    min_accuracy: float | None
    max_tier: str
    conservative: bool
    basis: Basis


def _rejection(row: VariantRow, bars: Bars) -> str | None:
    """Why a row does not qualify (the first failed criterion), or None when it does."""
    if bars.memory_gb is not None and row.memory_bytes is None:
        not_at = row.memory_basis.startswith("not measured at")
        return row.memory_basis if not_at else "memory unknown"
    if not fits(row, bars.memory_gb):
        return f"need more than {bars.memory_gb:g} GB"
    if row.tier is None:
        return "tier unknown (no baseline)"
    found = row.tier_on(bars.basis)
    if found is None:
        return "certified tier unknown (no paired items)"
    if TIERS.index(found) > TIERS.index(bars.max_tier):
        return f"{'certified ' if bars.basis == 'certified' else ''}worse than {bars.max_tier}"
    got = _score(row, bars.conservative, bars.basis)
    if bars.min_accuracy is not None and (got is None or got < bars.min_accuracy):
        what = "certified accuracy" if bars.basis == "certified" else "accuracy"
        what = "lower CI bound" if bars.conservative and bars.basis == "point" else what
        return f"{what} below {pct(bars.min_accuracy)}"
    return None


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


def _nothing(rejected: dict[str, int], total: int, memory_gb: float | None) -> str:
    if total == 0:
        return "nothing qualifies: the run has no variants"
    parts = ", ".join(f"{n} {why}" for why, n in sorted(rejected.items()))
    where = "" if memory_gb is None else f" on {memory_gb:g} GB"
    return f"nothing qualifies{where}: of {total} variants, {parts}"


def _check(max_tier: str, objective: str, min_accuracy: float | None, basis: str) -> None:
    if max_tier not in TIERS:
        raise DecisionError(f"unknown tier {max_tier!r}; choose one of {', '.join(TIERS)}")
    if objective not in OBJECTIVES:
        raise DecisionError(
            f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}"
        )
    if basis not in BASES:
        raise DecisionError(f"unknown basis {basis!r}; choose certified or point")
    if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
        raise DecisionError(f"min accuracy {min_accuracy:g} is not a proportion; write 0.6 for 60%")


def _rows(analysis: Analysis, model: str | None, cost_per_hour: float | None) -> list[VariantRow]:
    rows = variant_rows(analysis, cost_per_hour)
    if model is None:
        return rows
    known = sorted({r.model for r in rows})
    if model not in known:
        raise DecisionError(f"unknown model {model!r}; this run has: {', '.join(known) or 'none'}")
    return [r for r in rows if r.model == model]


def _tie_note(tie: Sequence[VariantRow], objective: str) -> str:
    if not tie:
        return ""
    names = ", ".join(r.variant for r in tie)
    how = "the best certified accuracy, then cost" if objective == "quality" else objective
    return f"tie: the data cannot separate {names} ({TIE_RULE}); broken by {how}"


def recommend(
    analysis: Analysis,
    memory_gb: float | None,
    min_accuracy: float | None = None,
    max_tier: str = "acceptable",
    objective: str = "quality",
    conservative: bool = False,
    cost_per_hour: float | None = None,
    *,
    basis: Basis = "certified",
    model: str | None = None,
    context: int | None = None,
) -> Recommendation:
    """The best variant that fits ``memory_gb`` (None: any) and the quality bars, with
    runners-up; on the certified basis (default) never one whose certified tier is worse than
    ``max_tier``, and variants the data cannot separate are a tie broken by ``objective``.
    ``context``: memory at that many tokens, from the memory phase (``context_memory.py``);
    None: at the study's context length, as measured while evaluating."""
    _check(max_tier, objective, min_accuracy, basis)
    rows = _rows(analysis, model, cost_per_hour)
    if context is not None:
        rows = at_context(analysis, rows, context)
    bars = Bars(memory_gb, min_accuracy, max_tier, conservative, basis)
    rejected: dict[str, int] = {}
    ok, held = [], []
    for r in rows:
        why = _rejection(r, bars)
        if why is None:
            ok.append(r)
        else:
            rejected[why] = rejected.get(why, 0) + 1
            if why.startswith("certified worse") and _could_qualify(r, bars.max_tier):
                held.append(r)  # more items could let it in: say how many
    index = CrossIndex(analysis.cross_model)
    extra = _admitted(rows, ok, bars, index)
    ok += extra
    admitted_ids = {r.variant for r in extra}
    held = [r for r in held if r.variant not in admitted_ids]  # admitted: among the picks now
    if not ok:
        reason = _nothing(rejected, len(rows), memory_gb)
        return Recommendation(
            memory_gb, objective, None, [], reason, basis,
            undecided=[line for r in held if (line := undecided_line(r)) is not None],
        )  # fmt: skip
    choice = choose(ok, objective, basis, conservative, index)
    picks = [_pick(r, i, len(ok), bars, objective) for i, r in enumerate(choice.ranked)]
    top = choice.ranked[: 1 + RUNNERS_UP]
    fitting = [r for r in rows if fits(r, memory_gb)]
    return Recommendation(
        memory_gb, objective, picks[0], picks[1 : 1 + RUNNERS_UP], "", basis,
        tie=[r.variant for r in choice.tie], tie_note=_tie_note(choice.tie, objective),
        undecided=[line for r in [*top, *held] if (line := undecided_line(r)) is not None],
        across=cross_comparisons(top[0], fitting, {r.variant for r in ok}, index, basis),
        admitted=[r.variant for r in extra],
    )  # fmt: skip


def _admitted(
    rows: Sequence[VariantRow], ok: Sequence[VariantRow], bars: Bars, index: CrossIndex
) -> list[VariantRow]:
    """Rows that meet every bar but the tier and are recommended across models
    (``cross.admitted``): certified basis only."""
    if bars.basis != "certified":
        return []
    loose = Bars(bars.memory_gb, bars.min_accuracy, WORST, bars.conservative, bars.basis)
    return admitted([r for r in rows if _rejection(r, loose) is None], ok, index)


def _could_qualify(row: VariantRow, max_tier: str) -> bool:
    """Held back by its certified tier alone, while its best case is within ``max_tier``."""
    best = row.best_tier
    return best is not None and TIERS.index(best) <= TIERS.index(max_tier)


_LEAD = {
    "quality": "most accurate",
    "cost": "cheapest",
    "speed": "fastest",
    "memory": "smallest",
    "value": "most accuracy per $",
}


def _pick(row: VariantRow, i: int, total: int, bars: Bars, objective: str) -> Pick:
    rank = "" if i == 0 else f"#{i + 1} "
    where = "" if bars.memory_gb is None else f" on {bars.memory_gb:g} GB"
    if bars.basis == "certified":
        return Pick(row.variant, guarantee(row))
    lead = f"{rank}{_LEAD[objective]} of {total} qualifying{where}"
    return Pick(row.variant, f"{lead}: {describe(row, bars.conservative)}")


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
        memory=memory_row(summary, analysis.context_length),
        summary=describe(row),
        certified="" if row.certified_tier is None else guarantee(row),
    )
