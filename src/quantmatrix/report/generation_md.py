"""The generation-quality section of report.md."""

from __future__ import annotations

from typing import Any

from quantmatrix.report.fmt import MISSING, num, signed, table


def _ci(block: dict[str, Any], digits: int = 3) -> str:
    if block["mean"] is None:
        return MISSING
    return (
        f"{block['mean']:.{digits}f} [{block['ci_low']:.{digits}f}, {block['ci_high']:.{digits}f}]"
    )


def _main(variants: list[dict[str, Any]]) -> str:
    rows = []
    for s in variants:
        g = s["generation"]
        m = g["metrics"]
        rows.append([
            s["variant"], g["n"], _ci(m["key_avg"]), signed(g["key_avg_delta_pct"]),
            _ci(m["bertscore_f1"]), _ci(m["coherence"]), _ci(m["rouge_l"]),
        ])  # fmt: skip
    head = ["Variant", "N", "Key avg [95% CI]", "Δ %", "BERTScore F1", "Coherence", "ROUGE-L"]
    return table(head, rows)


def _supplementary(variants: list[dict[str, Any]]) -> str:
    rows = []
    for s in variants:
        g = s["generation"]
        m = g["metrics"]
        rows.append([
            s["variant"], _ci(m["bleu"]), _ci(m["exact_match"]), _ci(m["length_ratio"]),
            _ci(m["repetition"]), "**yes**" if g["repetition_collapse"] else "no",
        ])  # fmt: skip
    head = ["Variant", "BLEU", "Exact match", "Length ratio", "Repetition", "Collapse"]
    return table(head, rows)


def _per_task(variants: list[dict[str, Any]]) -> str:
    tasks = sorted({t for s in variants for t in s["generation"]["tasks"]})

    def cell(s: dict[str, Any], t: str) -> str:
        block = s["generation"]["tasks"].get(t)
        return num(block["metrics"]["key_avg"]["mean"], 3) if block else MISSING

    rows = [[s["variant"], *(cell(s, t) for t in tasks)] for s in variants]
    return table(["Variant (key avg)", *tasks], rows)


def _fidelity(variants: list[dict[str, Any]]) -> str:
    rows = []
    for s in variants:
        f = s["generation"].get("fidelity")
        if not f:
            continue
        m = f["metrics"]
        rows.append([s["variant"], f["n"], _ci(m["key_avg"]), _ci(m["bertscore_f1"]),
                     _ci(m["rouge_l"]), _ci(m["exact_match"])])  # fmt: skip
    if not rows:
        return "No variant below a baseline has generation outputs yet."
    head = ["Variant", "N", "Key avg vs baseline", "BERTScore F1", "ROUGE-L", "Identical"]
    return table(head, rows)


def render_generation_md(analysis: dict[str, Any]) -> str:
    variants = [s for s in analysis["variants"] if s.get("generation")]
    if not variants:
        return ""
    models = analysis.get("scoring_models") or {}
    parts = [
        "## Generation quality",
        "",
        "Key metric average = mean of BERTScore F1, coherence (SemScore: cosine of "
        f"{models.get('embedding_model', '?')} sentence embeddings) and ROUGE-L F1. BERTScore "
        f"uses {models.get('bertscore_model', '?')} layer {models.get('bertscore_layer', '?')} "
        f"({models.get('bertscore_backend', '?')}; the standard deberta model is not available "
        "offline). Δ % is the change of the key average vs the model's baseline; a tier is the "
        "worse of the benchmark Δ pp and this Δ %.",
        "",
        _main(variants),
        "",
        "### Supplementary metrics",
        "",
        "Repetition = unique 4-grams / all 4-grams (1.0 = no repeats); collapse = below 0.9 x "
        "the baseline's.",
        "",
        _supplementary(variants),
        "",
        "### Per task",
        "",
        _per_task(variants),
        "",
        "### Fidelity to the baseline's own answers",
        "",
        "The same metrics between each variant's output and its baseline's output on the same "
        "prompt (paired: how far the quantized model drifts from its full-precision answer).",
        "",
        _fidelity(variants),
        "",
    ]
    return "\n".join(parts)
