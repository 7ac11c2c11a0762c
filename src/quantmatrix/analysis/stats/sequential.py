"""The accuracy change with its anytime-valid interval (``stopping/betting.py``'s sequence)."""

from __future__ import annotations

from collections.abc import Sequence

from quantmatrix.analysis.stats.paired import PairedChange
from quantmatrix.stopping.betting import confidence_sequence


def paired_change_sequence(
    base: Sequence[bool], var: Sequence[bool], alpha: float = 0.05, horizon: int | None = None
) -> PairedChange:
    """The accuracy change (pp) with its anytime-valid interval, from paired correctness in
    the order the items were run (the round order)."""
    if len(base) != len(var):
        raise ValueError(f"paired samples differ in length: {len(base)} vs {len(var)}")
    diffs = [float(b) - float(a) for a, b in zip(base, var, strict=True)]
    cs = confidence_sequence(diffs, -1.0, 1.0, alpha, horizon)
    return PairedChange(cs.n, 100.0 * cs.mean, 100.0 * cs.low, 100.0 * cs.high, alpha, "betting-cs")
