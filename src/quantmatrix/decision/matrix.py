"""The decision matrix: variant rows, memory tiers, what is (not) recommended, ladders, cliffs.

Quality tiers are the analysis's (``decide.tier``: benchmark pp under ``TIER_BOUNDS_BENCH``,
generation % under ``TIER_BOUNDS_GEN``); nothing here recomputes them, it only reads which of
them are safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.variant_model import VariantSummary
from quantmatrix.decide import SAFE_TIERS, TIERS
from quantmatrix.decision import GB
from quantmatrix.decision.cost import cost_rows
from quantmatrix.decision.cross import CrossIndex, recommended_on
from quantmatrix.decision.memory import memory_rows
from quantmatrix.decision.model import (
    Basis,
    Cliff,
    FigureName,
    MatrixEntry,
    NotRecommended,
    Step,
    TaskDifferential,
    VariantRow,
)
from quantmatrix.kvcache import label_rank


def variant_rows(analysis: Analysis, cost_per_hour: float | None = None) -> list[VariantRow]:
    """One flat row per variant: quality, tier, speed, $/1M and the memory the decision uses."""
    costs = {c.variant: c for c in cost_rows(analysis, cost_per_hour)}
    mems = {m.variant: m for m in memory_rows(analysis)}
    rows = []
    for s in analysis.variants:
        c, m, tm = costs[s.variant], mems[s.variant], s.speed
        base = analysis.baseline_of(s.model)
        rows.append(
            VariantRow(
                variant=s.variant,
                model=s.model,
                level=s.level,
                is_baseline=s.is_baseline,
                baseline_level=c.baseline_level,
                n=s.n,
                accuracy=s.accuracy,
                ci_low=s.ci_low,
                ci_high=s.ci_high,
                baseline_accuracy=None if base is None else base.accuracy,
                delta_pp=s.delta_pp,
                gen_delta_pct=s.gen_delta_pct,
                tier=s.tier,
                safe=s.tier in SAFE_TIERS,
                decode_tps=tm.native_decode_tps,
                ttft_s=tm.ttft_mean_s,
                usd_per_m=c.usd_per_m,
                savings_pct=c.savings_pct,
                cheaper_x=c.cheaper_x,
                memory_bytes=m.used_bytes,
                memory_basis=m.basis,
                task_delta_pp={k: b.delta_pp for k, b in sorted(s.tasks.items())},
                **_speed_basis(s),
                **certified_fields(s),
            )
        )
    return rows


def _speed_basis(s: VariantSummary) -> dict[str, object]:
    """With single-stream figures: say so, and keep the evaluation's batched tok/s beside
    them (rows of older logs say nothing: their speeds are the evaluation's, as before)."""
    if s.single_stream is None:
        return {}
    return {
        "speed_basis": s.speed_basis,
        "batch_decode_tps": s.timing.native_decode_tps,
        "batch_size": s.batch_size or 1,
    }


def certified_fields(s: VariantSummary) -> dict[str, Any]:
    """A row's certified tiers and intervals from the summary's certified block; a baseline
    is its own reference (negligible and decided, a change of exactly 0 on its items)."""
    if s.is_baseline:
        return {"certified_tier": TIERS[0], "best_tier": TIERS[0], "decided": True,
                "bench_change_pp": 0.0, "bench_low_pp": 0.0, "bench_certified_pp": 0.0,
                "bench_high_pp": 0.0, "bench_n": s.n, "items_used": s.n}  # fmt: skip
    c = s.certified
    if c is None:
        return {}
    bench, gen, flips = c.bench, c.generation, c.flips
    return {
        "certified_tier": c.certified,
        "best_tier": c.best,
        "decided": c.decided,
        "certified_note": c.note,
        "bench_change_pp": None if bench is None else bench.change,
        "bench_low_pp": None if bench is None else bench.low,
        "bench_certified_pp": None if bench is None else bench.certified_low,
        "bench_high_pp": None if bench is None else bench.high,
        "bench_n": None if bench is None else bench.n,
        "gen_low_pct": None if gen is None else gen.certified_low,
        "gen_high_pct": None if gen is None else gen.high,
        "gen_n": None if gen is None else gen.n,
        "items_used": c.items_used,
        "items_fixed": c.items_fixed,
        "flips_lost": None if flips is None else flips.lost.count,
        "flips_gained": None if flips is None else flips.gained.count,
    }


def tier_label(limit_gb: float, last: bool) -> str:
    return f"{limit_gb:g}+ GB" if last else f"{limit_gb:g} GB"


def fits(row: VariantRow, limit_gb: float | None) -> bool:
    """Whether a variant fits a budget (None: unbounded, everything fits)."""
    if limit_gb is None:
        return True
    used = row.memory_bytes
    return used is not None and used <= limit_gb * GB


def memory_matrix(
    rows: Sequence[VariantRow],
    tiers_gb: Sequence[float],
    basis: Basis = "certified",
    index: CrossIndex | None = None,
) -> list[MatrixEntry]:
    """Per budget: the variants that fit and those recommended (fit and tier safe on
    ``basis``: the certified tier by default, the point tier with ``"point"``; on the
    certified basis also those admitted across models, ``cross.recommended_on``).

    The last budget is open-ended ("8+ GB"): every variant is listed there, memory shown.
    """
    ordered = sorted(float(g) for g in tiers_gb)
    out = []
    for i, limit in enumerate(ordered):
        last = i == len(ordered) - 1
        inside = [r for r in rows if fits(r, None if last else limit)]
        out.append(
            MatrixEntry(
                label=tier_label(limit, last),
                limit_gb=limit,
                open_ended=last,
                fits=tuple(r.variant for r in inside),
                recommended=tuple(r.variant for r in recommended_on(inside, basis, index)),
            )
        )
    return out


def not_recommended(rows: Sequence[VariantRow], basis: Basis = "certified") -> list[NotRecommended]:
    """Variants whose tier on ``basis`` is not safe, with the figures that put them there."""
    out = []
    for r in rows:
        if r.safe_on(basis):
            continue
        found = r.tier_on(basis)
        if r.tier is None:
            reason = "no baseline to compare with: tier unknown"
        elif found is None:
            reason = "certified tier unknown (no paired items)"
        else:
            reason = f"{'certified ' if basis == 'certified' else ''}tier {found}"
            reason += _figures(r, basis)
            if r.certified_note:
                reason += f"; {r.certified_note}"
        out.append(NotRecommended(variant=r.variant, tier=found, reason=reason))
    return out


def _figures(r: VariantRow, basis: Basis) -> str:
    if basis == "certified" and r.bench_certified_pp is not None:
        gen = "" if r.gen_low_pct is None else f", generation >= {r.gen_low_pct:+.1f}%"
        return f" (bench >= {r.bench_certified_pp:+.1f}pp{gen}, {r.bench_n} paired items)"
    if r.delta_pp is None:
        return ""
    gen = "" if r.gen_delta_pct is None else f", {r.gen_delta_pct:+.1f}% generation"
    return f" ({r.delta_pp:+.1f}pp bench{gen})"


def tier_counts(rows: Sequence[VariantRow]) -> dict[str, int]:
    counts = {t: 0 for t in (*TIERS, "unknown")}
    for r in rows:
        counts[r.tier or "unknown"] += 1
    return counts


def _rank(level: str) -> tuple[int, int]:
    """Down the ladder: the level, then the KV type of a ``LEVEL+kv-TYPE`` label."""
    return label_rank(level)


def ladders(rows: Sequence[VariantRow]) -> dict[str, list[VariantRow]]:
    """Each model's rows from highest to lowest precision, models in first-seen order."""
    out: dict[str, list[VariantRow]] = {}
    for r in rows:
        out.setdefault(r.model, []).append(r)
    return {m: sorted(rs, key=lambda r: _rank(r.level)) for m, rs in out.items()}


def cliff(model: str, ladder: Sequence[VariantRow]) -> Cliff:
    """Walking down the ladder: the last safe level, the first unsafe one, and the drop."""
    if all(r.tier is None for r in ladder):
        return Cliff(
            model=model,
            last_safe=None,
            first_unsafe=None,
            first_unsafe_tier=None,
            cliff_pp=None,
            note="no baseline: tiers not computed",
        )
    last_safe: VariantRow | None = None
    for i, r in enumerate(ladder):
        if r.safe:
            last_safe = r
            continue
        drop = None
        if last_safe is not None and last_safe.accuracy is not None and r.accuracy is not None:
            drop = 100.0 * (last_safe.accuracy - r.accuracy)
        later = [x.level for x in ladder[i + 1 :] if x.safe]
        return Cliff(
            model=model,
            last_safe=None if last_safe is None else last_safe.level,
            first_unsafe=r.level,
            first_unsafe_tier=r.tier,
            cliff_pp=drop,
            note=f"safe again below: {', '.join(later)}" if later else "",
        )
    return Cliff(
        model=model,
        last_safe=None if last_safe is None else last_safe.level,
        first_unsafe=None,
        first_unsafe_tier=None,
        cliff_pp=None,
        note="no cliff: every level is safe",
    )


def _change_pct(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return 100.0 * (new - old) / old


def diminishing_returns(ladder: Sequence[VariantRow]) -> list[Step]:
    """Each step up the ladder (lower -> higher precision): quality gained vs cost and speed."""
    steps: list[Step] = []
    for lo, hi in pairwise(reversed(ladder)):
        gain = None
        if lo.accuracy is not None and hi.accuracy is not None:
            gain = 100.0 * (hi.accuracy - lo.accuracy)
        cost = _change_pct(hi.usd_per_m, lo.usd_per_m)
        per = gain / (cost / 10.0) if gain is not None and cost is not None and cost > 0 else None
        prev = steps[-1].gain_per_10pct_cost if steps else None
        steps.append(
            Step(
                model=hi.model,
                from_level=lo.level,
                to=hi.level,
                gain_pp=gain,
                cost_change_pct=cost,
                speed_change_pct=_change_pct(hi.decode_tps, lo.decode_tps),
                memory_change_pct=_change_pct(hi.memory_bytes, lo.memory_bytes),
                gain_per_10pct_cost=per,
                diminishing=None if per is None or prev is None else per < prev,
            )
        )
    return steps


def task_differential(rows: Sequence[VariantRow]) -> list[TaskDifferential]:
    """Delta on MMLU and on ARC-Challenge and their difference (MMLU minus ARC), per variant."""
    out = []
    for r in rows:
        da, db = r.task_delta_pp.get("mmlu"), r.task_delta_pp.get("arc_challenge")
        if da is None and db is None:
            continue
        diff = da - db if da is not None and db is not None else None
        out.append(
            TaskDifferential(variant=r.variant, mmlu_pp=da, arc_challenge_pp=db, diff_pp=diff)
        )
    return out


def pareto_front(rows: Sequence[VariantRow], cost_key: FigureName = "usd_per_m") -> list[str]:
    """Variants nothing beats on both accuracy (higher) and ``cost_key`` (lower); cheapest first."""
    pts = [(r, r.accuracy, r.figure(cost_key)) for r in rows]
    known = [(r, acc, cost) for r, acc, cost in pts if acc is not None and cost is not None]
    known.sort(key=lambda p: (p[2], -p[1], p[0].variant))
    front, best = [], float("-inf")
    for r, acc, _ in known:
        if acc > best:
            front.append(r.variant)
            best = acc
    return front
