"""Two runs side by side: the variants both measured, and where their numbers diverge.

Each figure of run B against run A (unpaired: the two runs' own means): accuracy in pp, speed,
latency, memory and the generation metrics of the published cross-phase check (BERTScore F1,
coherence, ROUGE-L) in % of A. Given the two run logs' pairing (``analysis/paired_runs.py``),
the comparison also carries, per shared variant, the paired intervals on the shared items and
whether the runs agree within them.
"""

from __future__ import annotations

from quantmatrix.analysis.frozen import Frozen
from quantmatrix.analysis.generation import KEY_METRICS
from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.paired_runs import RunsAgreement
from quantmatrix.analysis.variant_model import VariantSummary
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
    paired: RunsAgreement | None = None  # None: an input was an analysis.json, not a run


def divergence(a: float | None, b: float | None, unit: str) -> float | None:
    """B against A: percentage points for a proportion, else relative % of A."""
    if a is None or b is None:
        return None
    if unit == "pp":
        return 100.0 * (b - a)
    return None if a == 0 else 100.0 * (b - a) / abs(a)


def _metric(a: float | None, b: float | None, unit: str, threshold: float) -> MetricComparison:
    d = divergence(a, b, unit)
    flagged = d is not None and abs(d) > threshold
    return MetricComparison(a=a, b=b, divergence=d, unit=unit, flagged=flagged)


def _generation_mean(s: VariantSummary | None, metric: str) -> float | None:
    found = None if s is None or s.generation is None else s.generation.metrics.get(metric)
    return None if found is None else found.mean


def _metrics(
    ra: VariantRow,
    rb: VariantRow,
    sa: VariantSummary | None,
    sb: VariantSummary | None,
    threshold: float,
) -> dict[str, MetricComparison]:
    out: dict[str, MetricComparison] = {
        n: _metric(ra.figure(n), rb.figure(n), unit, threshold) for n, unit in METRICS.items()
    }
    for name in KEY_METRICS:  # the generation metrics, where either run has them
        a, b = _generation_mean(sa, name), _generation_mean(sb, name)
        if a is not None or b is not None:
            out[name] = _metric(a, b, "%", threshold)
    return out


def _flag_line(variant: str, name: str, m: MetricComparison) -> str:
    values = f"A {m.a:.4g}, B {m.b:.4g}"
    return f"{variant}: {name} diverges {m.divergence:+.1f}{m.unit} ({values})"


def compare(
    analysis_a: Analysis,
    analysis_b: Analysis,
    threshold_pct: float = 5.0,
    paired: RunsAgreement | None = None,
) -> Comparison:
    """Shared variants, per-metric divergence of B from A, flags above the threshold, and the
    paired agreement of the two run logs when it is given."""
    ra = {r.variant: r for r in variant_rows(analysis_a)}
    rb = {r.variant: r for r in variant_rows(analysis_b)}
    shared = [v for v in ra if v in rb]
    summaries = [(analysis_a.summary(v), analysis_b.summary(v)) for v in shared]
    rows = [
        VariantComparison(variant=v, metrics=_metrics(ra[v], rb[v], sa, sb, threshold_pct))
        for v, (sa, sb) in zip(shared, summaries, strict=True)
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
        paired=paired,
    )
