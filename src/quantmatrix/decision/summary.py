"""The executive summary: key decisions as sentences generated from the decision numbers only."""

from __future__ import annotations

from typing import Any

from quantmatrix.decide import TIERS, safe_text
from quantmatrix.numfmt import pct, signed


def cost_phrase(row: dict[str, Any]) -> str:
    """'2.1x cheaper than F16', '1.3x costlier than F16', or '' when not comparable."""
    x, base = row.get("cheaper_x"), row.get("baseline_level")
    if row.get("is_baseline") or x is None or base is None or x <= 0:
        return ""
    if abs(x - 1.0) < 0.05:
        return f"about the same cost as {base}"
    return f"{x:.1f}x cheaper than {base}" if x > 1 else f"{1 / x:.1f}x costlier than {base}"


def _quality_key(row: dict[str, Any]) -> tuple[float, float, str]:
    cost = row["usd_per_m"] if row["usd_per_m"] is not None else float("inf")
    return -(row["accuracy"] or 0.0), cost, row["variant"]


def _facts(row: dict[str, Any]) -> str:
    parts = [f"{signed(row['delta_pp'])}pp ({row['tier']})", f"accuracy {pct(row['accuracy'])}"]
    if row.get("gen_delta_pct") is not None:
        parts.insert(1, f"{signed(row['gen_delta_pct'])}% generation")
    if row.get("is_baseline"):
        parts[0] = "the baseline"
    cost = cost_phrase(row)
    return ", ".join([*parts, cost] if cost else parts)


def _tier_outcome(entry: dict[str, Any], rows: dict[str, dict[str, Any]]) -> str:
    """What to run on one budget, as the tail of a sentence (the budget is said by the caller)."""
    if entry["recommended"]:
        best = min((rows[v] for v in entry["recommended"]), key=_quality_key)
        return f"run {best['variant']}: {_facts(best)}."
    if not entry["fits"]:
        return "nothing fits: no variant's memory is within the budget."
    return f"nothing is recommended: {len(entry['fits'])} variant(s) fit, none {safe_text()}."


def _budget(group: list[dict[str, Any]], is_last: bool) -> str:
    first = str(group[0]["label"])
    if len(group) == 1:
        return first
    return f"{first} and above" if is_last else f"{first} to {group[-1]['label']}"


def _tier_lines(matrix: list[dict[str, Any]], rows: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per run of consecutive budgets with the same answer."""
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for entry in matrix:
        outcome = _tier_outcome(entry, rows)
        if groups and groups[-1][0] == outcome:
            groups[-1][1].append(entry)
        else:
            groups.append((outcome, [entry]))
    last = len(groups) - 1
    return [f"On {_budget(g, i == last)}, {o}" for i, (o, g) in enumerate(groups)]


def _cheapest_line(rows: list[dict[str, Any]]) -> list[str]:
    safe = [r for r in rows if r["safe"] and r["usd_per_m"] is not None]
    if not safe:
        return []
    r = min(safe, key=lambda r: (r["usd_per_m"], -(r["accuracy"] or 0.0), r["variant"]))
    return [
        f"Cheapest safe variant: {r['variant']} at ${r['usd_per_m']:.4f}/1M tokens: {_facts(r)}."
    ]


def _cliff_line(c: dict[str, Any]) -> str:
    m = c["model"]
    if c["first_unsafe"] is None:
        if c["last_safe"] is None:
            return f"{m}: tiers not computed (no baseline)."
        return f"{m}: every measured level is safe, down to {c['last_safe']}."
    if c["last_safe"] is None:
        return f"{m}: {c['first_unsafe']} is already {c['first_unsafe_tier']}."
    drop = "" if c["cliff_pp"] is None else f" loses {c['cliff_pp']:.1f}pp more and"
    return (
        f"{m}: safe down to {c['last_safe']}; the next level, {c['first_unsafe']},{drop} is "
        f"{c['first_unsafe_tier']}."
    )


def _memory_line(mem: list[dict[str, Any]]) -> list[str]:
    both = [m for m in mem if m["misleading"] is not None]
    bad = [m for m in both if m["misleading"]]
    if not both:
        return []
    return [
        f"The published memory estimate is off by more than 25% for {len(bad)} of {len(both)} "
        "variants measured; measured peaks are used wherever present."
    ]


def _counts_line(counts: dict[str, int]) -> str:
    parts = [f"{counts.get(t, 0)} {t}" for t in TIERS]
    if counts.get("unknown"):
        parts.append(f"{counts['unknown']} unknown")
    return "Tiers: " + ", ".join(parts) + "."


def executive_summary(decision: dict[str, Any]) -> list[str]:
    """Key decisions, each a sentence built only from the numbers in ``decision``."""
    rows = {r["variant"]: r for r in decision["variants"]}
    if not rows:
        return ["The run has no evaluated variants: nothing to decide."]
    lines = _tier_lines(decision["matrix"], rows)
    lines += _cheapest_line(decision["variants"])
    lines += [_cliff_line(c) for c in decision["cliffs"]]
    lines += _memory_line(decision["memory"])
    lines.append(_counts_line(decision["tier_counts"]))
    return lines
