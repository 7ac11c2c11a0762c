"""Small, deterministic number formatting and markdown tables for the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:+.{digits}f}"


def sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.2e}"


def gb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.3f} GB"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
