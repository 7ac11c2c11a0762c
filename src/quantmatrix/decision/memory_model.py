"""The typed memory row of a decision (``decision/memory.py`` fills it)."""

from __future__ import annotations

from quantmatrix.analysis.frozen import Frozen


class MemoryRow(Frozen):
    """The published estimate, the measurement, their disagreement and the figure used."""

    variant: str
    model: str
    level: str
    n_params: int | None
    nominal_bpw: float | None
    estimate_bytes: float | None
    measured_bytes: int | None
    source: str | None
    offloaded: bool
    rss_bytes: int | None
    error_pct: float | None
    misleading: bool | None
    used_bytes: int | float | None  # measured (int) where present, else the estimate (float)
    basis: str
    verdict: str
