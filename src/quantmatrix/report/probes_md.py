"""The report's probe sections: context-length sensitivity (token KL by position bucket,
many-shot multiple choice) and batch sensitivity; and the KL-by-position plot."""

from __future__ import annotations

from pathlib import Path

from quantmatrix.analysis.probes_model import (
    BatchSensitivity,
    Interval,
    LevelKL,
    LevelManyShot,
    LongContext,
    Probes,
)
from quantmatrix.report.fmt import MISSING, num, pct, table


def _g(x: float | None) -> str:
    return MISSING if x is None else f"{x:.3g}"


def _span(start: int, end: int) -> str:
    def k(n: int) -> str:
        return f"{n // 1024}k" if n >= 1024 and n % 1024 == 0 else str(n)

    return f"{k(start)}-{k(end)}"


def kl_cell(iv: Interval) -> str:
    if iv.low is None or iv.high is None:
        return _g(iv.value)
    return f"{_g(iv.value)} [{_g(iv.low)}, {_g(iv.high)}]"


def pp_cell(iv: Interval | None) -> str:
    if iv is None:
        return MISSING
    ends = "" if iv.low is None or iv.high is None else f" [{iv.low:+.1f}, {iv.high:+.1f}]"
    return f"{iv.value:+.1f}pp{ends}"


def pct_cell(iv: Interval | None) -> str:
    if iv is None or not iv.n:
        return MISSING
    ends = "" if iv.low is None or iv.high is None else f" [{pct(iv.low)}, {pct(iv.high)}]"
    return f"{pct(iv.value)}{ends}"


def _kl_table(levels: tuple[LevelKL, ...]) -> str:
    spans = sorted({(b.bucket, b.start, b.end) for lv in levels for b in lv.buckets})
    rows = []
    for lv in levels:
        cells = {b.bucket: kl_cell(b.kl) for b in lv.buckets}
        t = lv.trend
        rows.append([
            lv.variant + (" (baseline)" if lv.is_baseline else ""),
            *[cells.get(b, MISSING) for b, _, _ in spans],
            MISSING if t is None else kl_cell(t.change),
            MISSING if t is None or t.ratio is None else f"{t.ratio:.2f}x",
            MISSING if t is None else kl_cell(t.slope_per_doubling),
            MISSING if t is None else t.verdict,
        ])  # fmt: skip
    head = ["Variant", *[f"KL {_span(s, e)}" for _, s, e in spans], "Last - first",
            "Ratio", "Per doubling", "Grows with context?"]  # fmt: skip
    return table(head, rows)


def _kl_detail(levels: tuple[LevelKL, ...]) -> str:
    rows = [
        [lv.variant, _span(b.start, b.end), b.documents, b.tokens, pct(b.same_top),
         num(b.ppl_ratio, 4), num(b.seconds_per_document, 1)]
        for lv in levels for b in lv.buckets
    ]  # fmt: skip
    head = ["Variant", "Positions", "Documents", "Tokens", "Same top token", "PPL ratio",
            "Seconds per document"]  # fmt: skip
    return table(head, rows)


def _same_text_table(levels: tuple[LevelKL, ...]) -> str:
    rows = []
    for lv in levels:
        if lv.is_baseline:
            continue
        for b in lv.buckets:
            st = b.same_text
            if st is None:
                continue
            rows.append([
                lv.variant, _span(b.start, b.end), st.tokens, _g(st.in_sequence),
                _g(st.restarted), kl_cell(st.change),
                MISSING if st.ratio is None else f"{st.ratio:.2f}x",
            ])  # fmt: skip
    head = ["Variant", "Bucket", "Positions", "KL after the preceding text",
            "KL from an empty cache", "Difference [95% CI]", "Ratio"]  # fmt: skip
    return table(head, rows) if rows else ""


def _many_shot_table(levels: tuple[LevelManyShot, ...]) -> str:
    rows = []
    for lv in levels:
        for b in lv.buckets:
            lo, mid, hi = b.prompt_tokens
            rows.append([
                lv.variant + (" (baseline)" if lv.is_baseline else ""), _span(b.start, b.end),
                b.shots, f"{lo} / {mid} / {hi}" + (f" ({b.outside} outside)" if b.outside else ""),
                pct_cell(b.accuracy), pp_cell(b.change_pp), pct_cell(b.same_answer),
                num(b.prompt_s, 2),
            ])  # fmt: skip
    head = ["Variant", "Bucket", "Examples", "Prompt tokens min / median / max",
            "Accuracy [95% CI]", "Change vs baseline", "Same answer as baseline",
            "Prompt s per reply (at the batch size)"]  # fmt: skip
    return table(head, rows)


def _many_shot_trend(levels: tuple[LevelManyShot, ...]) -> str:
    rows = []
    for lv in levels:
        t = lv.trend
        if t is None:
            continue
        spans = {b.bucket: _span(b.start, b.end) for b in lv.buckets}
        rows.append([lv.variant, f"{spans[t.last]} vs {spans[t.first]}", t.change_pp.n,
                     pp_cell(t.change_pp), t.verdict])  # fmt: skip
    head = ["Variant", "Buckets", "Questions", "Change vs baseline, last minus first",
            "Loss with context"]  # fmt: skip
    return table(head, rows) if rows else ""


KL_NOTE = (
    "Each document is one sequence from its first token; position p is the next-token "
    "distribution after p + 1 tokens. A bucket's KL is the mean over documents of each "
    "document's mean KL vs the baseline in that bucket, with a t-interval over documents "
    "(positions along a document are autocorrelated, so the document is the unit; an "
    "interval over tokens would be far too narrow). *Last - first*: the change from the "
    "first bucket to the last, paired within documents, t-interval: the level's loss "
    "**grows** with context when it lies above 0. *Per doubling*: OLS slope of the 128-token "
    "block means on log2(position), cluster-robust interval over documents. Later positions "
    "are also later text (methods, results, references), so these changes mix the context's "
    "length with the text's kind; the same-text control below separates them."
)


SAME_TEXT_NOTE = (
    "**The same text with and without its context.** The first positions of each bucket after "
    "the first are evaluated again from an empty cache (baseline and variant alike), so the "
    "text is held fixed and only what precedes it differs: a difference above 0 means the "
    "preceding context itself raises the level's KL; paired within documents, t-interval."
)
MANY_SHOT_NOTE = (
    "The same questions in every bucket, each after as many solved examples (from the "
    "validation split) as bring the prompt into the bucket; these replies are not part of any "
    "accuracy above. Change vs baseline: paired on the same questions in the same bucket "
    "(Tango's score interval)."
)
MANY_SHOT_TREND_NOTE = (
    "Per question, (variant - baseline) correct at the last bucket minus the same at the "
    "first, in pp with a t-interval over questions (its spread counts one pseudo-question at "
    "each of +-100pp, so questions that all change alike give no zero-width interval): below "
    "0, the level loses more to the baseline in the longer prompt."
)


def _kl_part(lc: LongContext) -> list[str]:
    docs = len(lc.documents)
    parts = [
        f"Token KL vs the baseline by position, on {docs} long document"
        f"{'s' if docs != 1 else ''} ({lc.corpus_source}; up to {lc.cap} tokens each; "
        f"KL from {lc.kl_method}).",
        "",
        _kl_table(lc.levels),
        "",
        KL_NOTE,
        "",
        _kl_detail(lc.levels),
        "",
    ]
    same = _same_text_table(lc.levels)
    if same:
        parts += [SAME_TEXT_NOTE, "", same, ""]
    return [*parts, "![Token KL by position](plots/long_context_kl.png)", ""]


def _many_shot_part(lc: LongContext) -> list[str]:
    task = lc.many_shot[0].task
    parts = [f"### Many-shot multiple choice ({task})", "", MANY_SHOT_NOTE, ""]
    parts += [_many_shot_table(lc.many_shot), ""]
    trend = _many_shot_trend(lc.many_shot)
    return [*parts, MANY_SHOT_TREND_NOTE, "", trend, ""] if trend else parts


def render_long_context(lc: LongContext) -> str:
    parts = ["## Context length", ""]
    if lc.levels:
        parts += _kl_part(lc)
    if lc.many_shot:
        parts += _many_shot_part(lc)
    return "\n".join(parts)


def render_batch(batch: BatchSensitivity) -> str:
    lines = ["## Batch sensitivity", ""]
    lines += [
        "The timing subset's items asked one request at a time (batch 1) against the same "
        "items in the evaluation, at the batch size it ran with; pairs are those items.",
        "",
    ]
    rows = []
    for lv in batch.levels:
        iv = lv.identical
        same = f"{round(iv.value * iv.n)}/{iv.n}"
        rows.append([
            lv.variant, f"{lv.batch} {lv.basis}", f"{same} {pct_cell(iv)}",
            pp_cell(lv.change_pp), MISSING if lv.letter_max_diff is None
            else f"{lv.letter_max_diff:.3g} ({lv.letter_pairs} items)",
            ", ".join(lv.differing) or MISSING,
        ])  # fmt: skip
    head = ["Variant", "Batch N", "Outputs equal to batch 1", "Accuracy change (N - 1)",
            "Letter probability max |diff|", "Items that differ"]  # fmt: skip
    lines += [table(head, rows), ""]
    return "\n".join(lines)


def render_probes(probes: Probes | None) -> str:
    if probes is None:
        return ""
    parts = []
    if probes.long_context is not None:
        parts.append(render_long_context(probes.long_context))
    if probes.batch is not None:
        parts.append(render_batch(probes.batch))
    return "\n".join(parts)


def plot_long_context(lc: LongContext, path: Path) -> Path:
    """KL by position (log-log), one line per level below its baseline; deterministic bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.hashsalt": "quantmatrix", "path.simplify": False}):
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
        for lv in lc.levels:
            pts = [(pos + 1, kl) for pos, kl in lv.profile if kl > 0]
            if lv.is_baseline or not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker=".", label=lv.variant)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("position (tokens of context, log scale)")
        ax.set_ylabel("token KL vs baseline (nats, 128-token blocks)")
        ax.set_title("Token KL by position")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
    return path
