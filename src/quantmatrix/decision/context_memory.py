"""Memory at a context length, from the memory phase's measurements (pure).

A variant's peak memory is measured at a few context lengths (``VariantSummary
.context_memory``). At a length between two measured ones it is interpolated linearly: the
KV cache is linear in the context, and so are the attention's compute buffers without flash
attention (with it they barely grow), so memory is linear between two measured points. Below
the smallest measured length the smallest's figure is used, an upper bound (memory only grows
with the context). Beyond the largest it is refused in one line, never extrapolated.

The published estimate (``memory.estimate_bytes``: parameters x nominal bits / 8 x 1.1) has no
context or KV-cache term; :func:`context_lines` puts it beside every measured point, and the
same estimate plus the KV cache by the file header's formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.variant_model import ContextMemoryPoint, FileInfo, VariantSummary
from quantmatrix.decision import DecisionError
from quantmatrix.decision.memory import estimate_bytes
from quantmatrix.decision.model import VariantRow
from quantmatrix.kvcache import split_label


@dataclass(frozen=True)
class AtContext:
    bytes: float
    basis: str


def memory_at(summary: VariantSummary, n_ctx: int) -> AtContext | None:
    """The variant's memory at ``n_ctx`` tokens (None: never measured); a length beyond the
    largest measured one is a :class:`DecisionError`."""
    points = sorted(summary.context_memory or (), key=lambda p: p.n_ctx)
    if not points:
        return None
    exact = next((p for p in points if p.n_ctx == n_ctx), None)
    if exact is not None:
        return AtContext(exact.peak_bytes, f"measured at {n_ctx} tokens")
    if n_ctx < points[0].n_ctx:
        first = points[0]
        return AtContext(first.peak_bytes, f"measured at {first.n_ctx} tokens (upper bound)")
    if n_ctx > points[-1].n_ctx:
        raise DecisionError(
            f"context {n_ctx} is beyond the largest measured for {summary.variant} "
            f"({points[-1].n_ctx} tokens); add {n_ctx} to memory.contexts in the study and "
            "rerun it (memory is not extrapolated)"
        )
    lo = max((p for p in points if p.n_ctx < n_ctx), key=lambda p: p.n_ctx)
    hi = min((p for p in points if p.n_ctx > n_ctx), key=lambda p: p.n_ctx)
    share = (n_ctx - lo.n_ctx) / (hi.n_ctx - lo.n_ctx)
    value = lo.peak_bytes + share * (hi.peak_bytes - lo.peak_bytes)
    return AtContext(value, f"interpolated between {lo.n_ctx} and {hi.n_ctx} tokens")


def at_context(analysis: Analysis, rows: Sequence[VariantRow], n_ctx: int) -> list[VariantRow]:
    """The rows with their memory at ``n_ctx`` tokens (unknown where it was never measured);
    a run without any memory-vs-context measurement is a :class:`DecisionError`."""
    if not any(s.context_memory for s in analysis.variants):
        raise DecisionError(
            "this run measured no memory vs context; add memory: {contexts: [2048, 8192]} to "
            "the study and rerun it, or leave --context out"
        )
    out = []
    for row in rows:
        summary = analysis.summary(row.variant)
        found = None if summary is None else memory_at(summary, n_ctx)
        update = (
            {"memory_bytes": None, "memory_basis": f"not measured at {n_ctx} tokens"}
            if found is None
            else {"memory_bytes": found.bytes, "memory_basis": found.basis}
        )
        out.append(row.model_copy(update=update))
    return out


@dataclass(frozen=True)
class ContextLine:
    """One measured point of the report's "Memory vs context" table."""

    variant: str
    kv_cache: str
    point: ContextMemoryPoint
    estimate_bytes: float | None  # the published estimate: no context, no KV cache
    estimate_kv_bytes: float | None  # the same plus the header's KV cache at this context

    @property
    def error_pct(self) -> float | None:
        """How far the published estimate is from the measured figure (negative: too low)."""
        if self.estimate_bytes is None or not self.point.peak_bytes:
            return None
        return 100.0 * (self.estimate_bytes - self.point.peak_bytes) / self.point.peak_bytes


def context_lines(analysis: Analysis) -> list[ContextLine]:
    """Every variant's measured points, ascending, with the estimates beside."""
    out = []
    for s in analysis.variants:
        level, kv = split_label(s.level)
        estimate = estimate_bytes((s.file or FileInfo()).n_params, level)
        for p in sorted(s.context_memory or (), key=lambda p: p.n_ctx):
            with_kv = None
            if estimate is not None and p.kv_estimate_bytes is not None:
                with_kv = estimate + p.kv_estimate_bytes
            out.append(ContextLine(s.variant, kv, p, estimate, with_kv))
    return out
