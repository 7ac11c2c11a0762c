"""What a generated token costs: an hourly machine rate over the measured native decode speed
(the single-stream one when the timing phase ran: ``VariantSummary.speed``)."""

from __future__ import annotations

from quantmatrix.analysis.frozen import Frozen
from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.variant_model import VariantSummary

DEFAULT_COST_PER_HOUR = 0.035
DEFAULT_CONTEXT_LENGTH = 2048


class CostRow(Frozen):
    """$/1M for one variant, and how it compares with its model's baseline."""

    variant: str
    usd_per_m: float | None
    baseline_level: str | None
    baseline_usd_per_m: float | None
    savings_pct: float | None
    cheaper_x: float | None


def hourly_rate(analysis: Analysis, override: float | None = None) -> float:
    """The rate to price with: the override, else the run's ``cost_per_hour``, else the default."""
    if override is not None:
        return float(override)
    value = analysis.cost_per_hour
    return DEFAULT_COST_PER_HOUR if value is None else float(value)


def usd_per_million(decode_tps: float | None, cost_per_hour: float) -> float | None:
    """$ per 1M generated tokens = rate / (tok/s x 3600) x 1e6; None without a speed."""
    if decode_tps is None or decode_tps <= 0:
        return None
    return cost_per_hour / (decode_tps * 3600.0) * 1e6


def _decode_tps(summary: VariantSummary | None) -> float | None:
    if summary is None:
        return None
    value = summary.speed.native_decode_tps
    return None if value is None else float(value)


def cost_row(analysis: Analysis, summary: VariantSummary, cost_per_hour: float) -> CostRow:
    """$/1M for one variant, and how it compares with its model's baseline."""
    cost = usd_per_million(_decode_tps(summary), cost_per_hour)
    base = analysis.baseline_of(summary.model)
    base_cost = usd_per_million(_decode_tps(base), cost_per_hour)
    savings = cheaper = None
    if cost is not None and base_cost is not None:
        savings, cheaper = 100.0 * (base_cost - cost) / base_cost, base_cost / cost
    return CostRow(
        variant=summary.variant,
        usd_per_m=cost,
        baseline_level=None if base is None else base.level,
        baseline_usd_per_m=base_cost,
        savings_pct=savings,
        cheaper_x=cheaper,
    )


def cost_rows(analysis: Analysis, cost_per_hour: float | None = None) -> list[CostRow]:
    rate = hourly_rate(analysis, cost_per_hour)
    return [cost_row(analysis, s, rate) for s in analysis.variants]
