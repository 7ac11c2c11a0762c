"""Paired intervals of a variant's change vs its baseline on the same items (pure functions).

Accuracy: the change is ``p_var - p_base`` in percentage points, from the paired 2x2 table
``[[both correct, var only], [base only, neither]]``. statsmodels has no paired-difference
interval (``confint_proportions_2indep`` is for independent samples), so two published ones
are implemented here on top of statsmodels' Wilson interval and scipy's normal quantile:

- ``"newcombe"`` (default): Newcombe's hybrid score / square-and-add interval for paired data
  (Newcombe 1998, Stat Med 17:2635, method 10): Wilson intervals of the two marginal
  proportions combined with the continuity-corrected correlation ``psi``.
- ``"bonett-price"``: the Bonett & Price (2012) adjusted Wald interval, one pseudo-count added
  to each discordant cell (the same adjustment as ``equivalence.tost_paired_binary``).
- ``"tango"``: Tango's (1998, Stat Med 17:891) asymptotic score interval, the score test of
  ``p_var - p_base = d`` (variance at the constrained maximum-likelihood estimate, a closed-form
  root of a quadratic) inverted by bisection. The certified tiers use it
  (:data:`CERTIFY_METHOD`): by simulation (``bench/bench_certify.py``) the Wald-type lower ends
  of Newcombe and Bonett-Price miss a large loss from above more often than their nominal
  level when few items are gained (their variance estimate falls with the losses, so a lucky
  draw is also a narrow one), e.g. 2.2% against 1.67% at n = 1,000; the score interval's
  variance is taken at the hypothesised change and stays at or under the nominal level.

Both reproduce the worked example of Fagerland, Lydersen & Laake (2017, ch. 8; Cavo et al.
2012 data) to the four printed decimals (see the tests).

Generation: the key average's % change ``100 (mean(var) / mean(base) - 1)``, with a delta-
method interval (see :func:`ratio_change_interval` for why not a bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

BISECTION_STEPS = 60
Method = Literal["newcombe", "bonett-price", "tango"]
CERTIFY_METHOD: Method = "tango"  # the certified tiers' interval (see the module docstring)


@dataclass(frozen=True)
class PairedCounts:
    """The paired 2x2 table of correctness, baseline vs variant."""

    both: int
    gained: int  # wrong at the baseline, right in the variant
    lost: int  # right at the baseline, wrong in the variant
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.gained + self.lost + self.neither

    @classmethod
    def of(cls, base: Sequence[bool], var: Sequence[bool]) -> PairedCounts:
        if len(base) != len(var):
            raise ValueError(f"paired samples differ in length: {len(base)} vs {len(var)}")
        a = np.asarray(base, dtype=bool)
        b = np.asarray(var, dtype=bool)
        return cls(
            both=int((a & b).sum()),
            gained=int((~a & b).sum()),
            lost=int((a & ~b).sum()),
            neither=int((~a & ~b).sum()),
        )


@dataclass(frozen=True)
class PairedChange:
    """Point change and two-sided interval, in pp (accuracy) or % (generation)."""

    n: int
    change: float
    low: float
    high: float
    alpha: float
    method: str


def _wilson(successes: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    p = successes / n
    return np.minimum(np.asarray(low, dtype=float), p), np.maximum(np.asarray(high, dtype=float), p)


def newcombe_bounds(
    both: np.ndarray, gained: np.ndarray, lost: np.ndarray, neither: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe (1998) method 10 bounds of ``p_var - p_base`` (proportions), vectorized over
    tables (arrays of equal shape, every ``n > 0``)."""
    both, gained, lost, neither = (
        np.asarray(x, dtype=float) for x in (both, gained, lost, neither)
    )
    n = both + gained + lost + neither
    var_ok, base_ok = both + gained, both + lost
    p1, p2 = var_ok / n, base_ok / n
    l1, u1 = _wilson(var_ok, n, alpha)
    l2, u2 = _wilson(base_ok, n, alpha)
    margins = var_ok * (n - var_ok) * base_ok * (n - base_ok)
    a = both * neither - gained * lost
    corrected = np.where(a > n / 2, a - n / 2, np.where(a >= 0, 0.0, a))
    with np.errstate(divide="ignore", invalid="ignore"):
        psi = np.where(margins > 0, corrected / np.sqrt(margins), 0.0)
    d1, e2 = p1 - l1, u2 - p2
    d2, e1 = p2 - l2, u1 - p1
    low = p1 - p2 - np.sqrt(np.maximum(d1**2 + e2**2 - 2 * psi * d1 * e2, 0.0))
    high = p1 - p2 + np.sqrt(np.maximum(d2**2 + e1**2 - 2 * psi * d2 * e1, 0.0))
    return np.maximum(low, -1.0), np.minimum(high, 1.0)


def bonett_price_bounds(
    gained: np.ndarray, lost: np.ndarray, n: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bonett & Price (2012) adjusted Wald bounds of ``p_var - p_base``, vectorized."""
    g, lo, n = (np.asarray(x, dtype=float) for x in (gained, lost, n))
    p_gain, p_lost = (g + 1) / (n + 2), (lo + 1) / (n + 2)
    diff = p_gain - p_lost
    se = np.sqrt((p_gain + p_lost - diff**2) / (n + 2))
    z = float(sps.norm.ppf(1 - alpha / 2))
    return np.maximum(diff - z * se, -1.0), np.minimum(diff + z * se, 1.0)


def tango_z(gained: np.ndarray, lost: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Tango's score statistic of ``p_var - p_base = d``: ``(gained - lost - n d) /
    sqrt(n (2 q + d (1 - d)))``, ``q`` the constrained MLE of P(lost) (the root of ``2 n q^2 +
    w q - lost d (1 - d) = 0``, ``w = -gained - lost + (2 n - gained + lost) d``)."""
    w = -gained - lost + (2 * n - gained + lost) * d
    q = (np.sqrt(np.maximum(w**2 + 8 * n * lost * d * (1 - d), 0.0)) - w) / (4 * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = (gained - lost - n * d) / np.sqrt(n * (2 * q + d * (1 - d)))
    return out


def tango_bounds(
    gained: np.ndarray, lost: np.ndarray, n: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Tango (1998) score bounds of ``p_var - p_base``: the changes ``d`` whose statistic is
    within ``+-z``, by bisection on each side of the estimate, vectorized over tables."""
    g, lo, n = (np.asarray(x, dtype=float) for x in (gained, lost, n))
    z = float(sps.norm.ppf(1 - alpha / 2))
    estimate = (g - lo) / n
    ends = []
    for upper in (False, True):
        out = np.full(estimate.shape, 1.0 if upper else -1.0)  # excluded (or the edge)
        inside = estimate.copy()
        for _ in range(BISECTION_STEPS):
            mid = (out + inside) / 2.0
            stat = tango_z(g, lo, n, mid)
            gone = ~np.isfinite(stat) | ((stat <= -z) if upper else (stat >= z))
            out, inside = np.where(gone, mid, out), np.where(gone, inside, mid)
        ends.append(out)
    return ends[0], ends[1]


def paired_bounds(
    cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], alpha: float, method: Method
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``p_var - p_base`` (proportions) by ``method``, from the 2x2 cells ``(both,
    gained, lost, neither)`` (arrays of equal shape, every ``n > 0``)."""
    both, gained, lost, neither = cells
    if method == "newcombe":
        return newcombe_bounds(both, gained, lost, neither, alpha)
    n = np.asarray(both) + np.asarray(gained) + np.asarray(lost) + np.asarray(neither)
    if method == "bonett-price":
        return bonett_price_bounds(gained, lost, n, alpha)
    if method == "tango":
        return tango_bounds(gained, lost, n, alpha)
    raise ValueError(
        f"unknown paired interval method {method!r}: use newcombe, bonett-price or tango"
    )


def interval_of_counts(
    counts: PairedCounts, alpha: float = 0.05, method: Method = "newcombe"
) -> PairedChange:
    """The paired interval of the accuracy change from a 2x2 table, in pp.

    No items gives the uninformative ``[-100, +100]`` (change 0), so a tier built on it is
    undecided rather than an error.
    """
    n = counts.n
    if n == 0:
        return PairedChange(0, 0.0, -100.0, 100.0, alpha, method)
    cells = (counts.both, counts.gained, counts.lost, counts.neither)
    a, b, c, d = (np.asarray([x]) for x in cells)
    low, high = paired_bounds((a, b, c, d), alpha, method)
    change = 100.0 * (counts.gained - counts.lost) / n
    lo, hi = 100.0 * float(low[0]), 100.0 * float(high[0])
    return PairedChange(n, change, min(lo, change), max(hi, change), alpha, method)


def paired_change_interval(
    base: Sequence[bool], var: Sequence[bool], alpha: float = 0.05, method: Method = "newcombe"
) -> PairedChange:
    """Point change ``accuracy(var) - accuracy(base)`` and its paired ``1 - alpha`` interval,
    in pp; ``base[i]`` and ``var[i]`` are the two variants' correctness on item ``i``."""
    return interval_of_counts(PairedCounts.of(base, var), alpha, method)


def ratio_change_interval(
    base: Sequence[float], var: Sequence[float], alpha: float = 0.05, bound: float = 1.0
) -> PairedChange | None:
    """% change of a mean metric, ``100 (mean(var) / mean(base) - 1)``, with a paired
    delta-method interval: the linearized per-item values ``(y_i - R x_i) / mean(x)`` with
    ``R = mean(y) / mean(x)`` have the ratio's first-order variance; the interval uses the
    t quantile with ``n - 1`` degrees of freedom.

    Delta method rather than a bootstrap: it is deterministic (no seed to carry into
    analysis.json), exact in the linear term, and fast enough to be checked by simulation
    (the tests measure its coverage). Like ``equivalence.tost_paired_bounded``, one pseudo-item
    at each extreme ``+-bound / mean(x)`` joins the linearized values, so ten byte-identical
    outputs do not give a zero-width interval. None with fewer than two items or a baseline
    mean that is not positive.
    """
    x, y = np.asarray(base, dtype=float), np.asarray(var, dtype=float)
    if x.size != y.size:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    n = int(x.size)
    if n < 2 or float(x.mean()) <= 0.0:
        return None
    mean_x = float(x.mean())
    ratio = float(y.mean()) / mean_x
    linear = (y - ratio * x) / mean_x
    padded = np.concatenate([linear, [bound / mean_x, -bound / mean_x]])
    se = float(np.std(padded, ddof=1)) / math.sqrt(n)
    t = float(sps.t.ppf(1 - alpha / 2, n - 1))
    change = 100.0 * (ratio - 1.0)
    return PairedChange(n, change, change - 100.0 * t * se, change + 100.0 * t * se, alpha, "delta")
