"""The executive summary: key decisions as sentences generated from the decision numbers only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from quantmatrix.decide import TIERS, safe_text
from quantmatrix.decision.choose import choose
from quantmatrix.decision.cross import CrossIndex
from quantmatrix.decision.guarantee import guarantee
from quantmatrix.decision.memory_model import MemoryRow
from quantmatrix.decision.model import Basis, Cliff, MatrixEntry, VariantRow
from quantmatrix.numfmt import pct, signed


def cost_phrase(row: VariantRow) -> str:
    """'2.1x cheaper than F16', '1.3x costlier than F16', or '' when not comparable."""
    x, base = row.cheaper_x, row.baseline_level
    if row.is_baseline or x is None or base is None or x <= 0:
        return ""
    if abs(x - 1.0) < 0.05:
        return f"about the same cost as {base}"
    return f"{x:.1f}x cheaper than {base}" if x > 1 else f"{1 / x:.1f}x costlier than {base}"


def _facts_on(row: VariantRow, basis: Basis) -> str:
    return guarantee(row) if basis == "certified" else _facts(row)


def _facts(row: VariantRow) -> str:
    parts = [f"{signed(row.delta_pp)}pp ({row.tier})", f"accuracy {pct(row.accuracy)}"]
    if row.gen_delta_pct is not None:
        parts.insert(1, f"{signed(row.gen_delta_pct)}% generation")
    if row.is_baseline:
        parts[0] = "the baseline"
    cost = cost_phrase(row)
    return ", ".join([*parts, cost] if cost else parts)


def tier_outcome(
    entry: MatrixEntry,
    rows: Mapping[str, VariantRow],
    basis: Basis,
    index: CrossIndex | None = None,
) -> str:
    """What to run on one budget, as the tail of a sentence (the budget is said by the caller):
    the pick of :func:`choose.choose` (objective quality) among the recommended, and the tie
    it was picked from."""
    if entry.recommended:
        choice = choose([rows[v] for v in entry.recommended], "quality", basis, index=index)
        best = choice.ranked[0]
        tie = ""
        if choice.tie:
            others = ", ".join(r.variant for r in choice.tie if r is not best)
            tie = (
                f" (a tie with {others}: the data cannot separate them; broken by the best "
                "certified accuracy, then cost)"
            )
        return f"run {best.variant}: {_facts_on(best, basis)}{tie}."
    if not entry.fits:
        return "nothing fits: no variant's memory is within the budget."
    which = "certified " if basis == "certified" else ""
    return f"nothing is recommended: {len(entry.fits)} variant(s) fit, none {which}{safe_text()}."


def _budget(group: Sequence[MatrixEntry], is_last: bool) -> str:
    first = group[0].label
    if len(group) == 1:
        return first
    return f"{first} and above" if is_last else f"{first} to {group[-1].label}"


def tier_lines(
    matrix: Sequence[MatrixEntry],
    rows: Mapping[str, VariantRow],
    basis: Basis = "certified",
    index: CrossIndex | None = None,
) -> list[str]:
    """One sentence per run of consecutive budgets with the same answer."""
    groups: list[tuple[str, list[MatrixEntry]]] = []
    for entry in matrix:
        outcome = tier_outcome(entry, rows, basis, index)
        if groups and groups[-1][0] == outcome:
            groups[-1][1].append(entry)
        else:
            groups.append((outcome, [entry]))
    last = len(groups) - 1
    return [f"On {_budget(g, i == last)}, {o}" for i, (o, g) in enumerate(groups)]


def _cheapest_line(rows: Sequence[VariantRow], basis: Basis) -> list[str]:
    safe = [(r, r.usd_per_m) for r in rows if r.safe_on(basis) and r.usd_per_m is not None]
    if not safe:
        return []
    r, usd = min(safe, key=lambda p: (p[1] or 0.0, -(p[0].accuracy or 0.0), p[0].variant))
    which = "certified " if basis == "certified" else ""
    return [
        f"Cheapest {which}safe variant: {r.variant} at ${usd:.4f}/1M tokens: {_facts_on(r, basis)}."
    ]


def _cliff_line(c: Cliff, basis: Basis) -> str:
    """Where a model's point tiers turn unsafe (cliffs are drawn on point tiers: under the
    certified basis the line says so)."""
    m = c.model if basis == "point" else f"{c.model} (point tiers, as published)"
    if c.first_unsafe is None:
        if c.last_safe is None:
            return f"{m}: tiers not computed (no baseline)."
        return f"{m}: every measured level is safe, down to {c.last_safe}."
    if c.last_safe is None:
        return f"{m}: {c.first_unsafe} is already {c.first_unsafe_tier}."
    drop = "" if c.cliff_pp is None else f" loses {c.cliff_pp:.1f}pp more and"
    return (
        f"{m}: safe down to {c.last_safe}; the next level, {c.first_unsafe},{drop} is "
        f"{c.first_unsafe_tier}."
    )


def _memory_line(mem: Sequence[MemoryRow]) -> list[str]:
    both = [m for m in mem if m.misleading is not None]
    bad = [m for m in both if m.misleading]
    if not both:
        return []
    return [
        f"The published memory estimate is off by more than 25% for {len(bad)} of {len(both)} "
        "variants measured; measured peaks are used wherever present."
    ]


def _counts_line(counts: Mapping[str, int], basis: Basis) -> str:
    parts = [f"{counts.get(t, 0)} {t}" for t in TIERS]
    if counts.get("unknown"):
        parts.append(f"{counts['unknown']} unknown")
    head = "Tiers: " if basis == "point" else "Point tiers (as published): "
    return head + ", ".join(parts) + "."


def executive_summary(
    rows: Sequence[VariantRow],
    matrix: Sequence[MatrixEntry],
    cliffs: Sequence[Cliff],
    memory: Sequence[MemoryRow],
    counts: Mapping[str, int],
    basis: Basis = "certified",
    index: CrossIndex | None = None,
) -> list[str]:
    """Key decisions, each a sentence built only from the decision's numbers."""
    by_variant = {r.variant: r for r in rows}
    if not by_variant:
        return ["The run has no evaluated variants: nothing to decide."]
    lines = tier_lines(matrix, by_variant, basis, index)
    lines += _cheapest_line(rows, basis)
    lines += [_cliff_line(c, basis) for c in cliffs]
    lines += _memory_line(memory)
    lines.append(_counts_line(counts, basis))
    lines += _certified_counts(rows, basis)
    return lines


def _certified_counts(rows: Sequence[VariantRow], basis: Basis) -> list[str]:
    below = [r for r in rows if not r.is_baseline and r.certified_tier is not None]
    if basis != "certified" or not below:
        return []
    parts = [f"{sum(r.certified_tier == t for r in below)} {t}" for t in TIERS]
    undecided = sum(r.decided is False for r in below)
    return [
        f"Certified tiers (the worst the data allow) of the {len(below)} variants below their "
        f"baselines: {', '.join(parts)}; {undecided} undecided (certified worse than best case)."
    ]
