"""The decision matrix: variant rows, memory tiers, what is (not) recommended, ladders, cliffs."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from quantmatrix.decide import SAFE_TIERS, TIERS
from quantmatrix.decision import GB
from quantmatrix.decision.cost import baseline_of, cost_rows
from quantmatrix.decision.memory import memory_rows
from quantmatrix.levels import RANK

TASK_PAIR = ("mmlu", "arc_challenge")


def variant_rows(
    analysis: dict[str, Any], cost_per_hour: float | None = None
) -> list[dict[str, Any]]:
    """One flat row per variant: quality, tier, speed, $/1M and the memory the decision uses."""
    costs = {c["variant"]: c for c in cost_rows(analysis, cost_per_hour)}
    mems = {m["variant"]: m for m in memory_rows(analysis)}
    rows = []
    for s in analysis["variants"]:
        c, m, tm = costs[s["variant"]], mems[s["variant"]], s.get("timing") or {}
        t, base = s.get("tier"), baseline_of(analysis, s["model"]) or {}
        rows.append(
            {
                "variant": s["variant"],
                "model": s["model"],
                "level": s["level"],
                "is_baseline": bool(s.get("is_baseline")),
                "baseline_level": c["baseline_level"],
                "n": s.get("n"),
                "accuracy": s.get("accuracy"),
                "ci_low": s.get("ci_low"),
                "ci_high": s.get("ci_high"),
                "baseline_accuracy": base.get("accuracy"),
                "delta_pp": s.get("delta_pp"),
                "gen_delta_pct": s.get("gen_delta_pct"),
                "tier": t,
                "safe": t in SAFE_TIERS,
                "decode_tps": tm.get("native_decode_tps"),
                "ttft_s": tm.get("ttft_mean_s"),
                "usd_per_m": c["usd_per_m"],
                "savings_pct": c["savings_pct"],
                "cheaper_x": c["cheaper_x"],
                "memory_bytes": m["used_bytes"],
                "memory_basis": m["basis"],
                "task_delta_pp": {
                    k: b.get("delta_pp") for k, b in sorted(s.get("tasks", {}).items())
                },
            }
        )
    return rows


def tier_label(limit_gb: float, last: bool) -> str:
    return f"{limit_gb:g}+ GB" if last else f"{limit_gb:g} GB"


def fits(row: dict[str, Any], limit_gb: float | None) -> bool:
    """Whether a variant fits a budget (None: unbounded, everything fits)."""
    if limit_gb is None:
        return True
    used = row["memory_bytes"]
    return used is not None and used <= limit_gb * GB


def memory_matrix(rows: list[dict[str, Any]], tiers_gb: Sequence[float]) -> list[dict[str, Any]]:
    """Per budget: the variants that fit and those recommended (fit and tier safe).

    The last budget is open-ended ("8+ GB"): every variant is listed there, memory shown.
    """
    ordered = sorted(float(g) for g in tiers_gb)
    out = []
    for i, limit in enumerate(ordered):
        last = i == len(ordered) - 1
        inside = [r for r in rows if fits(r, None if last else limit)]
        out.append(
            {
                "label": tier_label(limit, last),
                "limit_gb": limit,
                "open_ended": last,
                "fits": [r["variant"] for r in inside],
                "recommended": [r["variant"] for r in inside if r["safe"]],
            }
        )
    return out


def not_recommended(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r["safe"]:
            continue
        if r["tier"] is None:
            reason = "no baseline to compare with: tier unknown"
        else:
            reason = f"tier {r['tier']}"
            if r["delta_pp"] is not None:
                reason += f" ({r['delta_pp']:+.1f}pp bench"
                gen = r["gen_delta_pct"]
                reason += f", {gen:+.1f}% generation)" if gen is not None else ")"
        out.append({"variant": r["variant"], "tier": r["tier"], "reason": reason})
    return out


def tier_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {t: 0 for t in (*TIERS, "unknown")}
    for r in rows:
        counts[r["tier"] or "unknown"] += 1
    return counts


def _rank(level: str) -> int:
    return RANK.get(level, len(RANK))


def ladders(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each model's rows from highest to lowest precision, models in first-seen order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["model"], []).append(r)
    return {m: sorted(rs, key=lambda r: _rank(r["level"])) for m, rs in out.items()}


def cliff(model: str, ladder: list[dict[str, Any]]) -> dict[str, Any]:
    """Walking down the ladder: the last safe level, the first unsafe one, and the drop."""
    head: dict[str, Any] = {
        "model": model,
        "last_safe": None,
        "first_unsafe": None,
        "first_unsafe_tier": None,
        "cliff_pp": None,
    }
    if all(r["tier"] is None for r in ladder):
        return {**head, "note": "no baseline: tiers not computed"}
    last_safe: dict[str, Any] | None = None
    for i, r in enumerate(ladder):
        if r["safe"]:
            last_safe = r
            continue
        drop = None
        if last_safe is not None and None not in (last_safe["accuracy"], r["accuracy"]):
            drop = 100.0 * (last_safe["accuracy"] - r["accuracy"])
        later = [x["level"] for x in ladder[i + 1 :] if x["safe"]]
        note = f"safe again below: {', '.join(later)}" if later else ""
        return {
            **head,
            "last_safe": None if last_safe is None else last_safe["level"],
            "first_unsafe": r["level"],
            "first_unsafe_tier": r["tier"],
            "cliff_pp": drop,
            "note": note,
        }
    low = None if last_safe is None else last_safe["level"]
    return {**head, "last_safe": low, "note": "no cliff: every level is safe"}


def _change_pct(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return 100.0 * (new - old) / old


def diminishing_returns(ladder: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step up the ladder (lower -> higher precision): quality gained vs cost and speed."""
    up = list(reversed(ladder))
    steps: list[dict[str, Any]] = []
    for lo, hi in pairwise(up):
        gain = None
        if lo["accuracy"] is not None and hi["accuracy"] is not None:
            gain = 100.0 * (hi["accuracy"] - lo["accuracy"])
        cost = _change_pct(hi["usd_per_m"], lo["usd_per_m"])
        per = gain / (cost / 10.0) if gain is not None and cost is not None and cost > 0 else None
        prev = steps[-1]["gain_per_10pct_cost"] if steps else None
        steps.append(
            {
                "model": hi["model"],
                "from": lo["level"],
                "to": hi["level"],
                "gain_pp": gain,
                "cost_change_pct": cost,
                "speed_change_pct": _change_pct(hi["decode_tps"], lo["decode_tps"]),
                "memory_change_pct": _change_pct(hi["memory_bytes"], lo["memory_bytes"]),
                "gain_per_10pct_cost": per,
                "diminishing": None if per is None or prev is None else per < prev,
            }
        )
    return steps


def task_differential(
    rows: list[dict[str, Any]], pair: tuple[str, str] = TASK_PAIR
) -> list[dict[str, Any]]:
    """Delta on each of two tasks and their difference (first minus second), per variant."""
    a, b = pair
    out = []
    for r in rows:
        da, db = r["task_delta_pp"].get(a), r["task_delta_pp"].get(b)
        if da is None and db is None:
            continue
        diff = da - db if da is not None and db is not None else None
        out.append({"variant": r["variant"], f"{a}_pp": da, f"{b}_pp": db, "diff_pp": diff})
    return out


def pareto_front(rows: list[dict[str, Any]], cost_key: str = "usd_per_m") -> list[str]:
    """Variants nothing beats on both accuracy (higher) and ``cost_key`` (lower); cheapest first."""
    pts = [r for r in rows if r["accuracy"] is not None and r[cost_key] is not None]
    pts.sort(key=lambda r: (r[cost_key], -r["accuracy"], r["variant"]))
    front, best = [], float("-inf")
    for r in pts:
        if r["accuracy"] > best:
            front.append(r["variant"])
            best = r["accuracy"]
    return front
