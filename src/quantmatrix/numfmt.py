"""Small, deterministic number formatting for every text the package writes.

Below the decision layer (its summary sentences and recommendations use it) and the report
(:mod:`quantmatrix.report.fmt` re-exports it beside the markdown table). Every missing value
prints as :data:`MISSING`, in every section, so a reader learns one mark.
"""

from __future__ import annotations

MISSING = "-"


def pct(x: float | None, digits: int = 1) -> str:
    return MISSING if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None, digits: int = 1) -> str:
    return MISSING if x is None else f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 1) -> str:
    return MISSING if x is None else f"{x:+.{digits}f}"


def sci(x: float | None) -> str:
    return MISSING if x is None else f"{x:.2e}"


def gb(n: int | None) -> str:
    return MISSING if n is None else f"{n / 1e9:.3f} GB"


def pp(x: float | None, sign: bool = True) -> str:
    """A proportion as percentage points: ``+1.2pp`` (or ``1.2pp`` unsigned)."""
    if x is None:
        return MISSING
    return f"{x * 100:+.1f}pp" if sign else f"{x * 100:.1f}pp"


def pvalue(p: float | None) -> str:
    """A p-value to four decimals; below 0.0001 as ``<0.0001`` rather than ``0.0000``."""
    if p is None:
        return MISSING
    return "<0.0001" if p < 0.0001 else f"{p:.4f}"


def count(n: int | None) -> str:
    return MISSING if n is None else str(n)
