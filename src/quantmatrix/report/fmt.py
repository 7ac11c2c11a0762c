"""The report's formatting: the package's number formats (:mod:`quantmatrix.numfmt`, with its
one missing-value mark) and markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quantmatrix.numfmt import MISSING, count, gb, num, pct, pp, pvalue, sci, signed

__all__ = [
    "MISSING",
    "count",
    "gb",
    "num",
    "pct",
    "pp",
    "pvalue",
    "sci",
    "signed",
    "table",
    "yes_no",
]


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
