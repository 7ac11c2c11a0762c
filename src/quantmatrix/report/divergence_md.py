"""The report's divergence section (markdown tables) and its KLD-vs-accuracy plot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from quantmatrix.analysis.divergence import metric_value
from quantmatrix.analysis.divergence_model import Divergence, DivergenceCliff
from quantmatrix.report.fmt import MISSING, num, pct, signed, table
from quantmatrix.runlog.writes import make_dirs, write_atomic


def _sci(x: float | None) -> str:
    return MISSING if x is None else f"{x:.3g}"


def _ci(values: tuple[float, float] | None) -> str:
    return MISSING if not values else f"[{values[0]:.3g}, {values[1]:.3g}]"


def _letters_table(div: Divergence) -> str:
    rows = []
    for vid in div.order:
        s = div.variants[vid].letters
        if s is None:
            continue
        rows.append([
            vid, s.n_items, _sci(s.letter_kl_mean), _ci(s.letter_kl_ci),
            _sci(s.letter_kl_p90), _sci(s.letter_kl_p99), pct(s.argmax_agreement),
            pct(s.expected_accuracy), pct(s.accuracy), pct(s.letter_mass),
        ])  # fmt: skip
    headers = ["Variant", "Items", "Letter KL (mean)", "95% CI", "p90", "p99",
               "Same answer as baseline", "Expected accuracy", "Argmax accuracy",
               "Mass on letters"]  # fmt: skip
    return table(headers, rows) if rows else "_No letter-probability rows._"


def _tokens_table(div: Divergence) -> str:
    rows = []
    for vid in div.order:
        s = div.variants[vid].tokens
        if s is None:
            continue
        rows.append([
            vid, s.n_tokens, _sci(s.kld_mean), _sci(s.kld_median), _sci(s.kld_p99),
            pct(s.same_top), num(s.ppl, 2), num(s.ppl_ratio, 4), s.kl_method,
        ])  # fmt: skip
    headers = ["Variant", "Tokens", "Mean KLD", "Median", "p99", "Same top token", "PPL",
               "PPL ratio", "KL from"]  # fmt: skip
    return table(headers, rows) if rows else "_No token-level KL rows._"


def _cliff_table(cliffs: Mapping[str, DivergenceCliff]) -> str:
    rows = [
        [model, c.divergence_cliff or MISSING, c.accuracy_cliff or MISSING,
         "yes" if c.agree else "no", signed(c.spearman, 2)]
        for model, c in cliffs.items()
    ]  # fmt: skip
    headers = ["Model", "Largest divergence step", "Largest accuracy drop", "Agree",
               "Spearman (divergence vs drop)"]  # fmt: skip
    return table(headers, rows)


NOTES = (
    "Divergences are KL(baseline || variant) in nats, against each model's baseline variant "
    "(the top of its ladder; for a model shipped quantized that is a reconstruction, not the "
    "original weights). Letter KL compares the option-letter distributions of each question "
    '(the probability of "A"/" A" etc. as the first token of the model\'s own answer, read '
    "from the same forward pass as the reply, renormalised over the options); "
    "its CI is a seeded percentile bootstrap of the mean. Expected accuracy is the mean "
    "probability on the gold letter. Token-level KL is over every position of the corpus. "
    '"topK+tailM": the baseline was stored as its K most probable tokens, the remaining mass '
    "and M tokens sampled from the rest, an unbiased estimate of the exact KL (within 2% of "
    'its mean on SmolLM2 and Qwen2.5 test runs); "topK (lower bound)": no samples, the KL of '
    "the two distributions coarsened to K+1 bins, which reads low (about 23% at K=32); "
    '"f16": full rows stored as float16 (exact to about 0.01%).'
)


def render_divergence_md(
    div: Divergence, cliffs: Mapping[str, DivergenceCliff] | None = None
) -> str:
    """The section's markdown; ``cliffs`` from ``analysis.divergence.cliff_agreement``."""
    parts = [
        "## Beyond accuracy: divergence from the baseline",
        NOTES,
        "### Option-letter probabilities",
        _letters_table(div),
        "### Token-level KL divergence",
        _tokens_table(div),
    ]
    if cliffs:
        parts += ["### Do KLD and accuracy agree on the cliff?", _cliff_table(cliffs)]
    return "\n\n".join(parts) + "\n"


def _save_metadata(path: Path) -> dict[str, str | None]:
    suffix = path.suffix.lower()
    if suffix == ".svg":
        return {"Date": None, "Creator": None}
    if suffix == ".pdf":
        return {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None}
    return {"Software": None}


def _points(
    div: Divergence, accuracy_delta_by_variant: Mapping[str, float], metric: str
) -> dict[str, list[tuple[float, float, str]]]:
    by_model: dict[str, list[tuple[float, float, str]]] = {}
    for vid in div.order:
        v = div.variants[vid]
        value = metric_value(v, metric)
        if vid == v.baseline or value is None or vid not in accuracy_delta_by_variant:
            continue
        delta = 100 * float(accuracy_delta_by_variant[vid])
        by_model.setdefault(v.model, []).append((max(float(value), 1e-6), delta, v.level))
    return by_model


def plot_kld_vs_accuracy(
    div: Divergence,
    accuracy_delta_by_variant: Mapping[str, float],
    path: Path,
    metric: str = "kld_mean",
) -> Path:
    """Scatter of divergence (log x) against accuracy delta in points, one series per model,
    each point labelled with its level. Deterministic bytes: no dates or versions written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.hashsalt": "quantmatrix", "path.simplify": False}):
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
        for model, pts in sorted(_points(div, accuracy_delta_by_variant, metric).items()):
            xs, ys, _labels = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", label=model)
            for x, y, label in pts:
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.margins(x=0.15, y=0.1)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xlabel(f"{metric} vs baseline (nats, log scale)")
        ax.set_ylabel("accuracy delta vs baseline (points)")
        ax.set_title("Divergence vs accuracy change")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        make_dirs(path.parent)
        meta = _save_metadata(path)
        write_atomic(path, lambda fh: fig.savefig(fh, format=path.suffix[1:], metadata=meta))
        plt.close(fig)
    return path
