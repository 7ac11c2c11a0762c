"""The headline table printed at the end of ``quantmatrix run``."""

from __future__ import annotations

from rich.table import Table

from quantmatrix.analysis.model import Analysis
from quantmatrix.report.fmt import MISSING, num, pct, signed


def headline_text(analysis: Analysis) -> Table:
    t = Table(title=f"quantmatrix: {analysis.study}")
    cols = ("variant", "accuracy [95% CI]", "Δ pp", "tier", "certified", "unparsed", "decode tok/s")
    for col in cols:
        t.add_column(col)
    for s in analysis.variants:
        t.add_row(
            s.variant,
            f"{pct(s.accuracy)} [{pct(s.ci_low)}, {pct(s.ci_high)}]",
            signed(s.delta_pp),
            s.tier or MISSING,
            MISSING if s.certified is None else s.certified.certified,
            pct(s.unparsed_rate),
            f"{num(s.speed.native_decode_tps)} ({s.speed_basis})",
        )
    return t
