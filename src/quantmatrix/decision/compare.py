"""Two runs side by side: the variants both measured, and where their numbers diverge."""

from __future__ import annotations

from quantmatrix.analysis.frozen import Frozen
from quantmatrix.analysis.model import Analysis
from quantmatrix.decision.matrix import variant_rows
from quantmatrix.decision.model import FigureName, VariantRow

# metric -> unit of the divergence: accuracy in pp, the rest in % of run A
METRICS: dict[FigureName, str] = {
    "accuracy": "pp",
    "decode_tps": "%",
    "ttft_s": "%",
    "memory_bytes": "%",
}


class MetricComparison(Frozen):
    a: float | None
    b: float | None
    divergence: float | None
    unit: str
    flagged: bool


class VariantComparison(Frozen):
    variant: str
    metrics: dict[str, MetricComparison]


class Comparison(Frozen):
    study_a: str
    study_b: str
    threshold_pct: float
    shared: tuple[str, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    rows: tuple[VariantComparison, ...]
    flags: tuple[str, ...]


def divergence(a: float | None, b: float | None, unit: str) -> float | None:
    """B against A: percentage points for a proportion, else relative % of A."""
    if a is None or b is None:
        return None
    if unit == "pp":
        return 100.0 * (b - a)
    return None if a == 0 else 100.0 * (b - a) / abs(a)


def _metrics(ra: VariantRow, rb: VariantRow, threshold: float) -> dict[str, MetricComparison]:
    out: dict[str, MetricComparison] = {}
    for name, unit in METRICS.items():
        a, b = ra.figure(name), rb.figure(name)
        d = divergence(a, b, unit)
        flagged = d is not None and abs(d) > threshold
        out[name] = MetricComparison(a=a, b=b, divergence=d, unit=unit, flagged=flagged)
    return out


def _flag_line(variant: str, name: str, m: MetricComparison) -> str:
    values = f"A {m.a:.4g}, B {m.b:.4g}"
    return f"{variant}: {name} diverges {m.divergence:+.1f}{m.unit} ({values})"


def compare(analysis_a: Analysis, analysis_b: Analysis, threshold_pct: float = 5.0) -> Comparison:
    """Shared variants, per-metric divergence of B from A, and flags above the threshold."""
    ra = {r.variant: r for r in variant_rows(analysis_a)}
    rb = {r.variant: r for r in variant_rows(analysis_b)}
    shared = [v for v in ra if v in rb]
    rows = [
        VariantComparison(variant=v, metrics=_metrics(ra[v], rb[v], threshold_pct)) for v in shared
    ]
    flags = [
        _flag_line(r.variant, name, m) for r in rows for name, m in r.metrics.items() if m.flagged
    ]
    return Comparison(
        study_a=analysis_a.study,
        study_b=analysis_b.study,
        threshold_pct=threshold_pct,
        shared=tuple(shared),
        only_a=tuple(v for v in ra if v not in rb),
        only_b=tuple(v for v in rb if v not in ra),
        rows=tuple(rows),
        flags=tuple(flags),
    )
