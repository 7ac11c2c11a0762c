"""Two runs side by side: the variants both measured, and where their numbers diverge."""

from __future__ import annotations

from typing import Any

from quantmatrix.decision.matrix import variant_rows

# metric -> (row key, unit of the divergence): accuracy in pp, the rest in % of run A
METRICS: dict[str, tuple[str, str]] = {
    "accuracy": ("accuracy", "pp"),
    "decode_tps": ("decode_tps", "%"),
    "ttft_s": ("ttft_s", "%"),
    "memory_bytes": ("memory_bytes", "%"),
}


def divergence(a: float | None, b: float | None, unit: str) -> float | None:
    """B against A: percentage points for a proportion, else relative % of A."""
    if a is None or b is None:
        return None
    if unit == "pp":
        return 100.0 * (b - a)
    return None if a == 0 else 100.0 * (b - a) / abs(a)


def _metrics(ra: dict[str, Any], rb: dict[str, Any], threshold: float) -> dict[str, Any]:
    out = {}
    for name, (key, unit) in METRICS.items():
        d = divergence(ra[key], rb[key], unit)
        out[name] = {
            "a": ra[key],
            "b": rb[key],
            "divergence": d,
            "unit": unit,
            "flagged": d is not None and abs(d) > threshold,
        }
    return out


def _flag_line(variant: str, name: str, m: dict[str, Any]) -> str:
    values = f"A {m['a']:.4g}, B {m['b']:.4g}"
    return f"{variant}: {name} diverges {m['divergence']:+.1f}{m['unit']} ({values})"


def compare(
    analysis_a: dict[str, Any], analysis_b: dict[str, Any], threshold_pct: float = 5.0
) -> dict[str, Any]:
    """Shared variants, per-metric divergence of B from A, and flags above the threshold."""
    ra = {r["variant"]: r for r in variant_rows(analysis_a)}
    rb = {r["variant"]: r for r in variant_rows(analysis_b)}
    shared = [v for v in ra if v in rb]
    rows = [{"variant": v, "metrics": _metrics(ra[v], rb[v], threshold_pct)} for v in shared]
    flags = [
        _flag_line(r["variant"], name, m)
        for r in rows
        for name, m in r["metrics"].items()
        if m["flagged"]
    ]
    return {
        "study_a": analysis_a.get("study"),
        "study_b": analysis_b.get("study"),
        "threshold_pct": threshold_pct,
        "shared": shared,
        "only_a": [v for v in ra if v not in rb],
        "only_b": [v for v in rb if v not in ra],
        "rows": rows,
        "flags": flags,
    }
