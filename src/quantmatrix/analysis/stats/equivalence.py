"""Equivalence tests (TOST) of a quantized variant against its baseline: pure functions.

Same conventions as :mod:`quantmatrix.analysis.stats.significance`: ``a`` is the baseline,
``b`` the quantized variant, and ``delta`` is ``mean(b) - mean(a)``. Degenerate samples give
a defined p-value, documented per function, so results stay JSON-safe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from quantmatrix.analysis.stats.numeric import as_floats, quiet


@dataclass(frozen=True)
class EquivalenceResult:
    """Two one-sided tests (TOST) of ``-margin < mean(b) - mean(a) < margin``."""

    design: str  # "paired" or "unpaired"
    margin: float
    n: int
    delta: float
    p_lower: float
    p_upper: float
    p_value: float
    equivalent: bool


def _degenerate_tost(
    design: str, margin: float, n: int, delta: float, alpha: float
) -> EquivalenceResult:
    p_lower = 0.0 if delta > -margin else 1.0
    p_upper = 0.0 if delta < margin else 1.0
    p_value = max(p_lower, p_upper)
    return EquivalenceResult(design, margin, n, delta, p_lower, p_upper, p_value, p_value < alpha)


def _tost_result(
    design: str, margin: float, n: int, delta: float, alpha: float, out: Any
) -> EquivalenceResult:
    """Unpack a statsmodels ``(p, (t, p_lower, df), (t, p_upper, df))`` TOST tuple."""
    p_value, lower, upper = out
    p, p_lower, p_upper = float(p_value), float(lower[1]), float(upper[1])
    if not all(math.isfinite(x) for x in (p, p_lower, p_upper)):
        return _degenerate_tost(design, margin, n, delta, alpha)
    return EquivalenceResult(design, margin, n, delta, p_lower, p_upper, p, p < alpha)


def tost_paired(
    a: Sequence[float], b: Sequence[float], margin: float, alpha: float = 0.05
) -> EquivalenceResult:
    """Paired TOST via ``statsmodels.stats.weightstats.ttost_paired`` on ``b - a``.

    Used for 0/1 correctness as well. Fewer than two pairs or a non-positive margin give
    p = 1; zero-variance differences are decided by whether the mean lies inside the margin.
    """
    xa, xb = as_floats(a), as_floats(b)
    n = int(xa.size)
    delta = float((xb - xa).mean()) if n else 0.0
    if n < 2 or margin <= 0.0:
        return EquivalenceResult("paired", margin, n, delta, 1.0, 1.0, 1.0, False)
    if float(np.std(xb - xa)) == 0.0:
        return _degenerate_tost("paired", margin, n, delta, alpha)
    with quiet():
        out = ttost_paired(xb, xa, -margin, margin)
    return _tost_result("paired", margin, n, delta, alpha, out)


def tost_paired_bounded(
    a: Sequence[float], b: Sequence[float], margin: float, bound: float, alpha: float = 0.05
) -> EquivalenceResult:
    """Paired TOST for a metric whose per-item differences lie within ``[-bound, bound]``.

    The continuous counterpart of :func:`tost_paired_binary`: one pseudo-pair at each extreme
    (``+bound`` and ``-bound``) joins the observed differences before
    ``statsmodels.stats.weightstats.ttost_paired``. Without it, byte-identical outputs on 10
    items (all differences 0) would "confirm" equivalence; with it, 10 such items cannot, while
    hundreds can. ``delta`` stays the observed mean difference.
    """
    xa, xb = as_floats(a), as_floats(b)
    n = int(xa.size)
    delta = float((xb - xa).mean()) if n else 0.0
    if n < 2 or margin <= 0.0 or bound <= 0.0:
        return EquivalenceResult("paired", margin, n, delta, 1.0, 1.0, 1.0, False)
    padded = np.concatenate([xb - xa, [bound, -bound]])
    with quiet():
        out = ttost_paired(padded, np.zeros_like(padded), -margin, margin)
    return _tost_result("paired", margin, n, delta, alpha, out)


def tost_unpaired(
    a: Sequence[float], b: Sequence[float], margin: float, alpha: float = 0.05
) -> EquivalenceResult:
    """Unpaired TOST via ``statsmodels.stats.weightstats.ttost_ind(usevar="unequal")``.

    Same degenerate-case rules as :func:`tost_paired`; ``n`` is the smaller sample size.
    """
    xa, xb = as_floats(a), as_floats(b)
    n = int(min(xa.size, xb.size))
    delta = float(xb.mean() - xa.mean()) if n else 0.0
    if n < 2 or margin <= 0.0:
        return EquivalenceResult("unpaired", margin, n, delta, 1.0, 1.0, 1.0, False)
    if float(np.std(xa)) == 0.0 and float(np.std(xb)) == 0.0:
        return _degenerate_tost("unpaired", margin, n, delta, alpha)
    with quiet():
        out = ttost_ind(xb, xa, -margin, margin, usevar="unequal")
    return _tost_result("unpaired", margin, n, delta, alpha, out)


def tost_paired_binary(
    a: Sequence[float], b: Sequence[float], margin: float, alpha: float = 0.05
) -> EquivalenceResult:
    """Paired TOST for 0/1 outcomes on the Bonett-Price adjusted Wald interval.

    A plain paired t-test has zero variance when no item flips, and would then "confirm"
    equivalence from 20 items; adding one pseudo-flip each way (Bonett & Price 2012,
    p_ij = (n_ij + 1) / (n + 2)) keeps the interval honest at small N and no flips.
    The one-sided normal tails use ``scipy.stats.norm``.
    """
    xa, xb = as_floats(a), as_floats(b)
    n = int(xa.size)
    if n < 2 or margin <= 0.0:
        delta = float((xb - xa).mean()) if n else 0.0
        return EquivalenceResult("paired", margin, n, delta, 1.0, 1.0, 1.0, False)
    gained = int(((xa == 0) & (xb == 1)).sum())
    lost = int(((xa == 1) & (xb == 0)).sum())
    p_gain, p_lost = (gained + 1) / (n + 2), (lost + 1) / (n + 2)
    adjusted = p_gain - p_lost
    se = math.sqrt(max((p_gain + p_lost - adjusted**2) / (n + 2), 1e-300))
    p_lower = float(sps.norm.sf((adjusted + margin) / se))
    p_upper = float(sps.norm.sf((margin - adjusted) / se))
    p = max(p_lower, p_upper)
    return EquivalenceResult(
        "paired", margin, n, (gained - lost) / n, p_lower, p_upper, p, p < alpha
    )
