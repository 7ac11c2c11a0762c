"""The report's "Memory vs context" section: each variant's measured memory at each context
length of the memory phase, llama.cpp's buffers, and the published estimate beside it."""

from __future__ import annotations

from quantmatrix.analysis.model import Analysis
from quantmatrix.decision.context_memory import ContextLine, context_lines
from quantmatrix.report.fmt import gb, signed, table


def _row(line: ContextLine) -> list[str]:
    p = line.point
    estimate = None if line.estimate_bytes is None else round(line.estimate_bytes)
    with_kv = None if line.estimate_kv_bytes is None else round(line.estimate_kv_bytes)
    fill = f"{p.filled_tokens} ({p.fill})"
    return [
        line.variant, line.kv_cache + (" (flash attn)" if p.flash_attn else ""), str(p.n_ctx),
        gb(p.peak_bytes), gb(p.rss_peak_bytes), gb(p.model_bytes), gb(p.kv_bytes),
        gb(p.compute_bytes), fill, gb(estimate), signed(line.error_pct), gb(with_kv),
    ]  # fmt: skip


def render_memory_context_md(analysis: Analysis) -> str:
    """The section, or "" when the run has no memory phase."""
    lines = context_lines(analysis)
    if not lines:
        return ""
    head = ["Variant", "KV cache", "Context", "Peak", "Peak RSS", "Model", "KV", "Compute"]
    head += ["Tokens filled", "Published estimate", "Estimate vs peak %", "Estimate + KV"]
    bases = sorted({line.point.basis for line in lines})
    return "\n".join(
        [
            "## Memory vs context",
            "",
            table(head, [_row(line) for line in lines]),
            "",
            "Each figure is measured in a fresh process at that context length, the variant's "
            "KV-cache type set (`memory` in the study). Peak: "
            + "; ".join(bases)
            + ". Model, KV and Compute are the buffers llama.cpp allocated (its own log). The "
            "published estimate (parameters x nominal bits / 8 x 1.1) has no context or "
            "KV-cache term; Estimate + KV adds the KV cache by the file header's formula. "
            "`recommend --context N` interpolates linearly between measured lengths "
            "(the KV cache grows linearly with the context) and never extrapolates.",
            "",
        ]
    )
