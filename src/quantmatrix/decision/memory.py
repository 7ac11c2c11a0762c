"""Memory: the published estimate (params x nominal bits / 8 x 1.1) next to the measured peak.

The measured figure wins when present; otherwise the estimate is used, and every row says which.
The measured figure is the process's RSS peak, or, for a model offloaded to a GPU, the GPU
memory NVML saw the process hold (the RSS stays beside it as ``rss_bytes``); where the memory
phase measured the variant at the study's own context length (a fresh process, the context
filled: ``pipeline/memory.py``), that figure is used instead.
"""

from __future__ import annotations

from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.variant_model import FileInfo, MemoryInfo, VariantSummary
from quantmatrix.decision.memory_model import MemoryRow
from quantmatrix.kvcache import split_label
from quantmatrix.levels import LEVELS

ESTIMATE_OVERHEAD = 1.1  # the published rule of thumb: weights plus 10%
MISLEADING_FRACTION = 0.25  # the estimate "misleads" when off by more than this, either way


def estimate_bytes(n_params: int | None, level: str) -> float | None:
    """params x nominal bits-per-weight / 8 x 1.1, or None when either is unknown."""
    known = LEVELS.get(level)
    if n_params is None or n_params <= 0 or known is None:
        return None
    return n_params * known.bits / 8.0 * ESTIMATE_OVERHEAD


def _verdict(error_pct: float | None, measured: int | None, estimate: float | None) -> str:
    if measured is None:
        return "not measured: estimate used" if estimate is not None else "unknown"
    if error_pct is None:
        return "measured (no estimate: parameter count unknown)"
    if abs(error_pct) <= 100 * MISLEADING_FRACTION:
        return f"estimate within {100 * MISLEADING_FRACTION:.0f}%"
    side = "too low" if error_pct < 0 else "too high"
    return f"estimate misleads: {abs(error_pct):.0f}% {side}"


def memory_row(summary: VariantSummary, context_length: int | None = None) -> MemoryRow:
    """Estimate, measurement, their disagreement, and the figure the decision uses (the
    memory phase's at ``context_length``, the study's, where it measured that length)."""
    file = summary.file or FileInfo()
    mem = summary.memory or MemoryInfo()
    level = split_label(summary.level)[0]  # the published estimate knows no KV cache
    estimate = estimate_bytes(file.n_params, level)
    offloaded = bool(mem.offloaded)
    # an offloaded model is bounded by GPU memory (NVML); None there means not measured
    measured_raw = mem.vram_bytes if offloaded else mem.peak_bytes
    measured = None if measured_raw is None else int(measured_raw)
    source = (None if mem.gpu is None else mem.gpu.source) if offloaded else mem.source
    point = next((p for p in summary.context_memory or () if p.n_ctx == context_length), None)
    if point is not None:
        measured, offloaded = point.peak_bytes, point.vram_bytes is not None
        source = f"memory phase at {point.n_ctx} tokens: {point.basis}"
    error_pct = None
    if measured and estimate is not None:
        error_pct = 100.0 * (estimate - measured) / measured
    used: float | None = measured if measured is not None else estimate
    basis = "measured" if measured is not None else ("estimate" if estimate is not None else None)
    return MemoryRow(
        variant=summary.variant,
        model=summary.model,
        level=summary.level,
        n_params=file.n_params,
        nominal_bpw=LEVELS[level].bits if level in LEVELS else None,
        estimate_bytes=estimate,
        measured_bytes=measured,
        source=source,
        offloaded=offloaded,
        rss_bytes=mem.peak_bytes,
        error_pct=error_pct,
        misleading=None if error_pct is None else abs(error_pct) > 100 * MISLEADING_FRACTION,
        used_bytes=used,
        basis=basis or "unknown",
        verdict=_verdict(error_pct, measured, estimate),
    )


def memory_rows(analysis: Analysis) -> list[MemoryRow]:
    return [memory_row(s, analysis.context_length) for s in analysis.variants]
