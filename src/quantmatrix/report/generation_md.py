"""The generation-quality section of report.md."""

from __future__ import annotations

from collections.abc import Sequence

from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.variant_model import GenerationSummary, MetricCI
from quantmatrix.report.fmt import MISSING, num, signed, table

Scored = Sequence[tuple[str, GenerationSummary]]  # (variant, its generation summary)


def _ci(block: MetricCI, digits: int = 3) -> str:
    if block.mean is None:
        return MISSING
    return f"{block.mean:.{digits}f} [{block.ci_low:.{digits}f}, {block.ci_high:.{digits}f}]"


def _main(variants: Scored) -> str:
    rows = []
    for v, g in variants:
        m = g.metrics
        rows.append([
            v, g.n, _ci(m["key_avg"]), signed(g.key_avg_delta_pct),
            _ci(m["bertscore_f1"]), _ci(m["coherence"]), _ci(m["rouge_l"]),
        ])  # fmt: skip
    head = ["Variant", "N", "Key avg [95% CI]", "Δ %", "BERTScore F1", "Coherence", "ROUGE-L"]
    return table(head, rows)


def _supplementary(variants: Scored) -> str:
    rows = []
    for v, g in variants:
        m = g.metrics
        rows.append([
            v, _ci(m["bleu"]), _ci(m["exact_match"]), _ci(m["length_ratio"]),
            _ci(m["repetition"]), "**yes**" if g.repetition_collapse else "no",
        ])  # fmt: skip
    head = ["Variant", "BLEU", "Exact match", "Length ratio", "Repetition", "Collapse"]
    return table(head, rows)


def _per_task(variants: Scored) -> str:
    tasks = sorted({t for _, g in variants for t in g.tasks})

    def cell(g: GenerationSummary, t: str) -> str:
        block = g.tasks.get(t)
        return num(block.metrics["key_avg"].mean, 3) if block is not None else MISSING

    rows = [[v, *(cell(g, t) for t in tasks)] for v, g in variants]
    return table(["Variant (key avg)", *tasks], rows)


def _fidelity(variants: Scored) -> str:
    rows = []
    for v, g in variants:
        f = g.fidelity
        if f is None:
            continue
        m = f.metrics
        rows.append([v, f.n, _ci(m["key_avg"]), _ci(m["bertscore_f1"]),
                     _ci(m["rouge_l"]), _ci(m["exact_match"])])  # fmt: skip
    if not rows:
        return "No variant below a baseline has generation outputs yet."
    head = ["Variant", "N", "Key avg vs baseline", "BERTScore F1", "ROUGE-L", "Identical"]
    return table(head, rows)


def render_generation_md(analysis: Analysis) -> str:
    variants = [(s.variant, s.generation) for s in analysis.variants if s.generation]
    if not variants:
        return ""
    models = analysis.scoring_models
    embedding, bertscore, layer, backend = (
        ("?", "?", "?", "?")
        if models is None
        else (
            models.embedding_model,
            models.bertscore_model,
            str(models.bertscore_layer),
            models.bertscore_backend,
        )
    )
    parts = [
        "## Generation quality",
        "",
        "Key metric average = mean of BERTScore F1, coherence (SemScore: cosine of "
        f"{embedding} sentence embeddings) and ROUGE-L F1. BERTScore "
        f"uses {bertscore} layer {layer} "
        f"({backend}; the standard deberta model is not available "
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
