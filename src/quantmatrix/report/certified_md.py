"""The report's certified tiers: what the data certify about each variant vs its baseline
(the analysis's certified blocks), as markdown."""

from __future__ import annotations

from quantmatrix.analysis.certified_model import CertifiedBlock, ChangeInterval, RateBound
from quantmatrix.analysis.model import Analysis
from quantmatrix.report.fmt import MISSING, pct, pvalue, table


def interval_text(iv: ChangeInterval | None) -> str:
    """'-1.7 [-4.2, +0.9] pp' (or %), '-' when absent."""
    if iv is None:
        return MISSING
    return f"{iv.change:+.1f} [{iv.low:+.1f}, {iv.high:+.1f}] {iv.unit}"


def _rate(r: RateBound | None) -> str:
    if r is None or r.rate is None:
        return MISSING
    return f"{r.count}/{r.n} = {pct(r.rate)} [{pct(r.low)}, {pct(r.high)}]"


def _row(variant: str, c: CertifiedBlock) -> list[str]:
    bt, gt = c.bench_tiers, c.generation_tiers
    flips = c.flips
    unparsed = MISSING
    if c.unparsed is not None:
        u = c.unparsed
        rise = " (rise)" if u.significant else ""
        unparsed = f"{u.base.count} -> {u.variant.count} of {u.base.n}, p {pvalue(u.p_value)}{rise}"
    return [
        variant,
        interval_text(c.bench),
        "/".join((bt.point, bt.certified, bt.best)) if bt else MISSING,
        interval_text(c.generation),
        "/".join((gt.point, gt.certified, gt.best)) if gt else MISSING,
        c.point,
        c.certified,
        c.best,
        "yes" if c.decided else "no",
        MISSING if flips is None else f"{flips.lost.count} lost, {flips.gained.count} gained",
        _rate(c.same_answer),
        unparsed,
        str(c.items_used) + ("" if c.items_fixed is None else f" of {c.items_fixed}"),
    ]


def render_certified_md(analysis: Analysis) -> str:
    """The certified-tier section: per variant its intervals, three tiers and the evidence."""
    blocks = [(s.variant, s.certified) for s in analysis.variants if s.certified is not None]
    if not blocks:
        return ""
    head = ["Variant", "Bench Δ [interval]", "Bench tiers (point/cert./best)", "Gen Δ [interval]"]
    head += ["Gen tiers", "Point", "Certified", "Best case", "Decided", "Flips", "Same answer"]
    head += ["Unparsed (base -> variant)", "Items"]
    first = blocks[0][1]
    methods = sorted({c.bench.method for _, c in blocks if c.bench is not None})
    notes = [f"- {v}: {c.note}." for v, c in blocks if c.note]
    lines = [
        "## Certified tiers",
        "",
        table(head, [_row(v, c) for v, c in blocks]),
        "",
        f"Certified = the tier of the interval's lower end (the worst the data allow), best case"
        f" = of its upper end; decided when they agree. Benchmark intervals: "
        f"{', '.join(methods) or MISSING} on the paired items; generation: delta method on "
        f"the key average's % change. Family-wise rule: {first.family_rule}. A significant "
        "rise in unparsed replies (McNemar, p < 0.05) holds a variant out of negligible.",
        "",
    ]
    return "\n".join([*lines, *notes, ""] if notes else lines)
