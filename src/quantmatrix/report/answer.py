"""The answer across models in words: per memory budget the pick with its guarantee, the
runner-up and the comparisons with the other models (``decision/answer.py``), and every
variant at a glance. The report's opening (markdown, HTML) and ``quantmatrix run``'s first
lines say the same sentences."""

from __future__ import annotations

from collections.abc import Mapping

from quantmatrix.decide import safe_text
from quantmatrix.decision.answer_model import BudgetAnswer, CrossComparison
from quantmatrix.decision.cross import EQUIVALENT_PP
from quantmatrix.decision.guarantee import guarantee
from quantmatrix.decision.model import Decision, VariantRow
from quantmatrix.decision.recommend import describe
from quantmatrix.numfmt import MISSING, pct, signed

METHODS = {
    "tango": "Tango's paired score interval",
    "betting-cs": "the betting confidence sequence on the shared prefix of the round order",
}
VERDICTS = {
    "better": "certified better",
    "worse": "certified worse",
    "equivalent": f"certified within +-{EQUIVALENT_PP:g}pp",
    "not decided": "not decided",
}


def _gb(x: float | None) -> str:
    return "memory unknown" if x is None else f"{float(x) / 1e9:.2f} GB"


def comparison_text(c: CrossComparison) -> str:
    """'a (0.78 GB) vs b (0.62 GB): +13.3pp [+3.1, +23.0] on 60 shared items, certified
    better'; says when the other model's best that fits is not itself recommended."""
    text = (
        f"{c.pick} ({_gb(c.pick_memory_bytes)}) vs {c.other} ({_gb(c.other_memory_bytes)}): "
        f"{c.change_pp:+.1f}pp [{c.low_pp:+.1f}, {c.high_pp:+.1f}] on {c.n} shared items, "
        f"{VERDICTS[c.verdict]}"
    )
    if not c.other_recommended:
        text += f" ({c.other} itself is not recommended: tier {c.other_tier or 'unknown'})"
    return text


ADMITTED = (
    "recommended across models: certified more accurate than every variant that fits and "
    "is recommended on its tier"
)


def admitted_text(row: VariantRow) -> str:
    """Why a variant whose tier is not safe is recommended anyway (``cross.admitted``)."""
    base = row.baseline_level or "baseline"
    head, tail = ADMITTED.split(": ", 1)
    return f"{head}: certified {row.certified_tier} against its own {base}, but {tail}"


def _facts(row: VariantRow, d: Decision) -> str:
    return guarantee(row) if d.basis == "certified" else describe(row)


def _runner_up(row: VariantRow, d: Decision, across: bool) -> str:
    which = "certified" if d.basis == "certified" else "tier"
    tier = row.tier_on(d.basis) or MISSING
    how = ", recommended across models" if across else ""
    return f"runner-up: {row.variant} ({which} {tier}{how}, {_gb(row.memory_bytes)})"


def _same(a: BudgetAnswer, b: BudgetAnswer) -> bool:
    keys = ("pick", "runner_up", "tie", "comparisons")
    return a.pick is not None and all(getattr(a, k) == getattr(b, k) for k in keys)


def budget_item(
    b: BudgetAnswer, first: BudgetAnswer | None, d: Decision, rows: Mapping[str, VariantRow]
) -> tuple[str, list[str]]:
    """One budget: the line after its label, and the lines under it."""
    if b.pick is None:
        if b.smallest is not None:
            need = _gb(rows[b.smallest].memory_bytes)
            return f"nothing fits; the smallest variant, {b.smallest}, needs {need}", []
        which = "certified " if d.basis == "certified" else ""
        return (
            f"nothing is recommended: {b.fits} variant(s) fit, none {which}{safe_text()}",
            [],
        )
    if first is not None and _same(b, first):
        return f"the same as {first.label}: run {b.pick}", []
    subs = []
    if b.pick in b.admitted:
        subs.append(admitted_text(rows[b.pick]))
    if b.tie:
        subs.append(
            f"a tie with {', '.join(b.tie)}: the data cannot separate them; the pick has the "
            "best certified accuracy"
        )
    if b.runner_up is not None:
        subs.append(_runner_up(rows[b.runner_up], d, b.runner_up in b.admitted))
    subs += [comparison_text(c) for c in b.comparisons]
    return f"run {b.pick}: {_facts(rows[b.pick], d)}", subs


def budget_items(d: Decision) -> list[tuple[str, str, list[str]]]:
    """(label, line, lines under it) per answer budget; a budget with the same answer as the
    one before refers to the first of them."""
    rows = d.rows()
    out, first = [], None
    for b in d.budgets:
        line, subs = budget_item(b, first, d, rows)
        out.append((b.label, line, subs))
        if first is None or not _same(b, first):
            first = b
    return out


def _interval_words(d: Decision) -> str:
    found = [c for b in d.budgets for c in b.comparisons]
    if not found:
        return "One model only: no comparison across models."
    methods = " or ".join(METHODS.get(m, m) for m in sorted({c.method for c in found}))
    levels = "/".join(f"{100 * (1 - a):g}%" for a in sorted({c.alpha for c in found}))
    return (
        "Across models, each budget compares the pick with the best variant of each other "
        "model that fits the same budget: the accuracy difference on the multiple-choice items "
        f"both answered, with {methods} at {levels} two-sided, each comparison on its own (not "
        "adjusted for the others shown): certified better or worse when the interval excludes "
        f"0, certified within +-{EQUIVALENT_PP:g}pp when it lies inside that band, else not "
        "decided."
    )


def answer_note(d: Decision) -> str:
    """How the answer is made, in words (after the budgets)."""
    across = any(b.comparisons for b in d.budgets)
    if d.basis == "point":
        rule = (
            f"The pick: of the variants that fit the budget and whose point tier (as published) "
            f"is {safe_text()}, the most accurate; the runner-up is the next."
        )
        return f"{rule} {_interval_words(d)}"
    admission = (
        ", plus, as a tier is relative to its own baseline, any variant of a model with none "
        "of those that is certified more accurate than every one of them (recommended across "
        "models)"
        if across
        else ""
    )
    beaten = " and is never certified less accurate than another of another model" if across else ""
    rule = (
        f"The pick: of the variants that fit, those whose certified tier (the worst the data "
        f"allow against their own model's baseline, 95% family-wise per model) is "
        f"{safe_text()}{admission}; the pick has the best certified accuracy (baseline "
        f"accuracy plus the certified lower bound of the change){beaten}; the runner-up is "
        "the next. A tie: variants the data cannot separate (within a model, overlapping paired "
        "ranges" + ("; across models, a paired interval containing 0)." if across else ").")
    )
    return f"{rule} {_interval_words(d)}"


def glance_headers() -> list[str]:
    return ["Variant", "Memory GB", "Accuracy [95% CI]", "Δ pp [interval]", "Certified"]


def glance_rows(d: Decision) -> list[list[str]]:
    """Every variant: memory, accuracy, the paired change vs its baseline, certified tier."""
    out = []
    for r in d.variants:
        change = "baseline" if r.is_baseline else signed(r.delta_pp)
        if not r.is_baseline and r.bench_low_pp is not None and r.bench_high_pp is not None:
            change += f" [{r.bench_low_pp:+.1f}, {r.bench_high_pp:+.1f}]"
        mem = MISSING if r.memory_bytes is None else f"{float(r.memory_bytes) / 1e9:.2f}"
        acc = f"{pct(r.accuracy)} [{pct(r.ci_low)}, {pct(r.ci_high)}]"
        tier = r.certified_tier or MISSING
        if r.decided is False and r.best_tier is not None:
            tier += f" (at best {r.best_tier})"
        out.append([r.variant, mem, acc, change, tier])
    return out
