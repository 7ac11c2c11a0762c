"""The report's first lines: what each model's baseline is, and which levels used an
importance matrix, from the variants rows (models/origin.py names the kinds)."""

from __future__ import annotations

from collections.abc import Sequence

from quantmatrix.analysis.variant_model import VariantSummary


def _baseline_line(s: VariantSummary) -> str | None:
    kind, model, level = s.origin, s.model, s.level
    src = f" ({s.source})" if s.source else ""
    precision = s.source_type or "unknown"
    if kind == "original":
        cast = "" if precision in (level, "unknown") else f", cast from {precision}"
        return (
            f"**Baseline of {model}: the original {level} weights**{src}{cast}: the source's "
            "own precision, so the deltas measure quantization loss against the true model."
        )
    if kind == "quantized":
        return (
            f"**Baseline of {model}: {level}, quantized from the original {precision} "
            f"weights**{src}; the deltas compare each level with that file, not with full "
            "precision."
        )
    if kind == "reconstruction" or (kind is None and s.reconstructed):
        return (
            f"**The {level} baseline of {model} is a reconstruction of its shipped "
            f"{precision} file**, not the original full-precision weights: every level "
            "is built from that file, so no level can be better than the source, and the "
            "deltas measure re-quantization loss on top of it."
        )
    if kind in ("shipped", "requantized"):
        what = "the shipped file itself" if kind == "shipped" else f"{level} requantized from it"
        return (
            f"**Baseline of {model}: a quantized source ({precision}){src}, {what}**, not "
            "full-precision weights: the deltas measure loss on top of that quantization."
        )
    if kind == "server":
        return (
            f"**Baseline of {model}: the server's tag `{s.source or level}`**; "
            "quantmatrix cannot read a server's weights, so their precision is what the tag says."
        )
    return None


def _imatrix_lines(variants: Sequence[VariantSummary]) -> list[str]:
    by_text: dict[tuple[str, str], list[str]] = {}
    for s in variants:
        imat = s.imatrix
        if imat:
            key = (str(imat.get("text")), str(imat.get("sha256", ""))[:12])
            by_text.setdefault(key, []).append(f"{s.model} {s.level}")
    return [
        f"**Importance matrix** (llama-imatrix over {text}, SHA-256 {sha}...) used for: "
        f"{', '.join(names)}; every other level was quantized without one."
        for (text, sha), names in sorted(by_text.items())
    ]


def origin_notes(variants: Sequence[VariantSummary]) -> list[str]:
    """One line per model's baseline, then one per calibration text used."""
    lines = [_baseline_line(s) for s in variants if s.is_baseline]
    return [ln for ln in lines if ln] + _imatrix_lines(variants)
