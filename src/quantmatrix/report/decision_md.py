"""The decision sections as blocks, rendered to markdown (``report.md``) or HTML (``report.html``).

Both renderers read the same block list, so the two reports always say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from quantmatrix.decide import TIERS, safe_text
from quantmatrix.decision.model import Decision, VariantRow
from quantmatrix.report.answer import answer_note, budget_items, glance_headers, glance_rows
from quantmatrix.report.fmt import MISSING, gb, num, pct, signed

PLOT_TITLES = {
    "accuracy_by_level": "Accuracy by quant level, with 95% CIs and tier bands",
    "quality_vs_cost": "Quality vs $ per 1M generated tokens (Pareto front)",
    "quality_vs_memory": "Memory/quality frontier across models",
    "tier_ladder": "Tier ladder per model: paired change vs the baseline, certified bands",
    "flips_by_level": "Answers lost and gained vs the baseline, per level",
    "tier_heatmap": "Tier per model and level",
    "speed_by_level": "Decode tok/s and TTFT per level",
}


@dataclass(frozen=True)
class Block:
    """One piece of the report: heading (h2/h3), paragraph, list, table or image; "ul2" is
    a list of labelled items (``headers``: labels, ``items``: their lines) with sub-items
    (``rows``: one tuple per item)."""

    kind: str
    text: str = ""
    items: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def _table(headers: list[str], rows: list[list[str]]) -> Block:
    return Block("table", headers=tuple(headers), rows=tuple(tuple(r) for r in rows))


def _usd(x: float | None) -> str:
    return MISSING if x is None else f"${x:.4f}"


def _mem(row: VariantRow) -> str:
    b = row.memory_bytes
    return "unknown" if b is None else f"{gb(int(b))} ({row.memory_basis})"


def _basis(d: Decision) -> str:
    """The speed figures' label: single-stream when the timing phase ran ("" for a log
    without it, whose report reads as before)."""
    bases = {r.speed_basis for r in d.variants}
    if bases == {None}:
        return ""
    return " (single-stream)" if bases == {"single-stream"} else " (single-stream where timed)"


def _tier_cell(r: VariantRow) -> str:
    """'negligible / acceptable / negligible': point / certified / best case."""
    return " / ".join(t or MISSING for t in (r.tier, r.certified_tier, r.best_tier))


def adaptive_saving(d: Decision) -> str:
    """Items used per variant vs a fixed design, when the study sampled adaptively."""
    rows = [r for r in d.variants if not r.is_baseline and r.items_fixed is not None]
    if not rows:
        return ""
    used = sum(r.items_used or 0 for r in rows)
    fixed = sum(r.items_fixed or 0 for r in rows)
    each = ", ".join(f"{r.variant} {r.items_used} of {r.items_fixed}" for r in rows)
    saving = 100.0 * (1 - used / fixed) if fixed else 0.0
    return (
        f"Adaptive sampling: items used per variant: {each}; {used} of {fixed} in all "
        f"({saving:.0f}% fewer than the fixed design)."
    )


def answer_blocks(d: Decision) -> list[Block]:
    """The answer, first in both reports: per memory budget the pick across models with its
    guarantee, the runner-up and the comparison with the other models; how it is made; then
    every variant at a glance."""
    items = budget_items(d)
    out = [
        Block("h2", "The answer"),
        Block(
            "ul2",
            headers=tuple(label for label, _, _ in items),
            items=tuple(line for _, line, _ in items),
            rows=tuple(tuple(subs) for _, _, subs in items),
        ),
        Block("p", answer_note(d)),
    ]
    saving = adaptive_saving(d)
    if saving:
        out.append(Block("p", saving))
    out += [Block("h2", "Every variant at a glance"), _table(glance_headers(), glance_rows(d))]
    return out


def _summary(d: Decision) -> list[Block]:
    note = (
        f"Priced at ${d.cost_per_hour:g} per hour over each variant's native decode speed"
        f"{_basis(d)}; "
        f"context length {d.context_length} tokens. Memory: the measured peak where present, "
        "else the published estimate (params x nominal bits / 8 x 1.1). Recommended: fits the "
        f"budget and {'certified ' if d.basis == 'certified' else ''}tier {safe_text()}."
    )
    return [
        Block("h2", "Decision: executive summary"),
        Block("ul", items=tuple(d.summary)),
        Block("p", note),
    ]


def _matrix(d: Decision, rows: Mapping[str, VariantRow]) -> list[Block]:
    out = [Block("h2", "Decision matrix per memory budget")]
    head = ["Variant", "Memory", "Bench Δ pp", "Gen Δ %", "Tier (point / certified / best)"]
    head += [f"Decode tok/s{_basis(d)}", f"$/1M{_basis(d)}", "Rec."]
    for entry in d.matrix:
        out.append(Block("h3", entry.label + (" (open-ended)" if entry.open_ended else "")))
        if not entry.fits:
            out.append(Block("p", f"No variant fits {entry.label}."))
            continue
        body = [
            [
                v,
                _mem(r),
                signed(r.delta_pp),
                signed(r.gen_delta_pct),
                _tier_cell(r),
                num(r.decode_tps),
                _usd(r.usd_per_m),
                "yes" if v in entry.recommended else "no",
            ]
            for v in entry.fits
            for r in [rows[v]]
        ]
        out.append(_table(head, body))
    return out


def _lists(d: Decision) -> list[Block]:
    out = [Block("h2", "Not recommended")]
    if d.not_recommended:
        body = [[n.variant, n.tier or "unknown", n.reason] for n in d.not_recommended]
        out.append(_table(["Variant", "Tier", "Why"], body))
    else:
        out.append(Block("p", f"Every variant is {safe_text()}."))
    counts = d.tier_counts
    body = [[t, str(counts.get(t, 0))] for t in (*TIERS, "unknown")]
    return [*out, Block("h2", "Tier counts"), _table(["Tier", "Variants"], body)]


def _enumeration(d: Decision) -> list[Block]:
    head = ["Variant", "Accuracy [95% CI]", "Bench Δ pp", "Gen Δ %"]
    head += ["Tier (point / certified / best)", f"Decode tok/s{_basis(d)}"]
    head += [f"TTFT s{_basis(d)}", f"$/1M{_basis(d)}", "Savings vs baseline", "Memory"]
    body = [
        [
            r.variant,
            f"{pct(r.accuracy)} [{pct(r.ci_low)}, {pct(r.ci_high)}]",
            signed(r.delta_pp),
            signed(r.gen_delta_pct),
            _tier_cell(r),
            num(r.decode_tps),
            num(r.ttft_s, 3),
            _usd(r.usd_per_m),
            MISSING if r.savings_pct is None else f"{r.savings_pct:+.1f}%",
            _mem(r),
        ]
        for r in d.variants
    ]
    return [Block("h2", "All variants"), _table(head, body)]


def _ladders(d: Decision) -> list[Block]:
    cliffs = [
        [
            c.model,
            c.last_safe or MISSING,
            c.first_unsafe or MISSING,
            c.first_unsafe_tier or MISSING,
            num(c.cliff_pp),
            c.note or "",
        ]
        for c in d.cliffs
    ]
    steps = [
        [
            s.model,
            f"{s.from_level} -> {s.to}",
            signed(s.gain_pp),
            signed(s.cost_change_pct),
            signed(s.speed_change_pct),
            signed(s.memory_change_pct),
            signed(s.gain_per_10pct_cost, 2),
            {True: "yes", False: "no", None: MISSING}[s.diminishing],
        ]
        for s in d.diminishing_returns
    ]
    head = ["Model", "Step up", "Gain pp", "Cost %", "Speed %", "Memory %", "pp per +10% cost"]
    out = [Block("h2", "Quality cliffs")]
    out.append(
        _table(["Model", "Last safe", "First unsafe", "Its tier", "Cliff pp", "Note"], cliffs)
    )
    out += [Block("h2", "Diminishing returns (each step up the ladder)")]
    out.append(_table([*head, "Diminishing"], steps) if steps else Block("p", "One level only."))
    return out


def _tasks(d: Decision) -> list[Block]:
    out = [Block("h2", "MMLU vs ARC (delta vs baseline, pp)")]
    rows = [
        [t.variant, signed(t.mmlu_pp), signed(t.arc_challenge_pp), signed(t.diff_pp)]
        for t in d.task_differential
    ]
    if not rows:
        return [*out, Block("p", "Not available: the run lacks MMLU or ARC deltas.")]
    return [*out, _table(["Variant", "MMLU Δ pp", "ARC Δ pp", "MMLU - ARC pp"], rows)]


def _memory(d: Decision) -> list[Block]:
    body = [
        [
            m.variant,
            MISSING if m.n_params is None else f"{m.n_params:,}",
            num(m.nominal_bpw, 3),
            gb(None if m.estimate_bytes is None else int(m.estimate_bytes)),
            gb(m.measured_bytes),
            m.source or MISSING,
            MISSING if m.error_pct is None else f"{m.error_pct:+.0f}%",
            m.verdict,
            m.basis,
        ]
        for m in d.memory
    ]
    head = ["Variant", "Params", "Nominal BPW", "Estimate", "Measured", "How measured"]
    head += ["Estimate error", "Verdict", "Used"]
    return [Block("h2", "Memory: measured vs estimated"), _table(head, body)]


def _plots(plots: Mapping[str, str]) -> list[Block]:
    out = [Block("h2", "Plots")]
    for name, path in plots.items():
        out += [Block("h3", PLOT_TITLES.get(name, name)), Block("img", name, items=(path,))]
    return out


def decision_blocks(
    decision: Decision, plots: Mapping[str, str], answer: bool = True
) -> list[Block]:
    """Every decision section in order: the answer (unless ``answer`` is False: report.md
    puts it above its notes), the executive summary, ..., plots last."""
    rows = decision.rows()
    return [
        *(answer_blocks(decision) if answer else []),
        *_summary(decision),
        *_matrix(decision, rows),
        *_lists(decision),
        *_enumeration(decision),
        *_ladders(decision),
        *_tasks(decision),
        *_memory(decision),
        *_plots(plots),
    ]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def block_md(b: Block) -> str:
    if b.kind in ("h2", "h3"):
        return f"{'#' * int(b.kind[1])} {b.text}"
    if b.kind == "ul2":
        lines = []
        for label, line, subs in zip(b.headers, b.items, b.rows, strict=True):
            lines.append(f"- **{label}**: {line}")
            lines += [f"  - {sub}" for sub in subs]
        return "\n".join(lines)
    if b.kind == "ul":
        return "\n".join(f"- {item}" for item in b.items)
    if b.kind == "table":
        lines = ["| " + " | ".join(_md_cell(h) for h in b.headers) + " |"]
        lines.append("|" + "|".join("---" for _ in b.headers) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
        return "\n".join(lines)
    if b.kind == "img":
        return f"![{PLOT_TITLES.get(b.text, b.text)}]({b.items[0]})"
    return b.text


def render_decision_md(decision: Decision, plots: Mapping[str, str]) -> str:
    """The decision sections after the answer as markdown; ``plots`` maps plot name ->
    relative PNG path."""
    return "\n\n".join(block_md(b) for b in decision_blocks(decision, plots, False)) + "\n"


def render_answer_md(decision: Decision) -> str:
    """The answer section as markdown (report.md opens with it)."""
    return "\n\n".join(block_md(b) for b in answer_blocks(decision)) + "\n"
