"""Does a variant's accuracy change differ between two benchmarks? (pure functions)

Each benchmark's change ``p_var - p_base`` comes from its own paired 2x2 table. The two
benchmarks hold different items, so given the variant the two changes are independent, and
their difference has the sum of their variances. The test is the z test of a difference of two
independent estimates, each estimate and variance being Bonett & Price's (2012, J Educ Behav
Stat 37:479) adjusted Wald for paired proportions (one pseudo-count in each discordant cell,
as ``paired.bonett_price_bounds`` and ``equivalence.tost_paired_binary``):

    d_t = (gained_t + 1 - lost_t - 1) / (n_t + 2),
    v_t = (g~_t + l~_t - d_t^2) / (n_t + 2),  with g~_t = (gained_t + 1) / (n_t + 2), ...
    z = (d_a - d_b) / se,  se = sqrt(v_a + v_b),  two-sided normal p;
    interval (d_a - d_b) +- z_(alpha/2) se.

The pseudo-counts keep ``v_t > 0`` (no flips on either benchmark is "no evidence", not a zero
variance); its size and the interval's coverage are measured by simulation in the tests.
Everything is in percentage points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from quantmatrix.analysis.stats.paired import PairedCounts

METHOD = "bonett-price z"


@dataclass(frozen=True)
class ChangeDifference:
    """Change on benchmark a, on benchmark b, their difference (a - b) and its test, in pp."""

    n_a: int
    n_b: int
    change_a: float
    change_b: float
    diff: float
    low: float
    high: float
    z: float
    p_value: float
    method: str = METHOD


def _adjusted(gained: np.ndarray, lost: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bonett-Price adjusted change and its variance (proportions), vectorized."""
    p_gain, p_lost = (gained + 1.0) / (n + 2.0), (lost + 1.0) / (n + 2.0)
    change = p_gain - p_lost
    return change, (p_gain + p_lost - change**2) / (n + 2.0)


def difference_arrays(
    a: tuple[np.ndarray, np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjusted difference, its standard error and the two-sided p, vectorized over tables;
    ``a`` and ``b`` are ``(gained, lost, n)`` arrays (proportions out, every ``n > 0``)."""
    ga, la, na = (np.asarray(x, dtype=float) for x in a)
    gb, lb, nb = (np.asarray(x, dtype=float) for x in b)
    da, va = _adjusted(ga, la, na)
    db, vb = _adjusted(gb, lb, nb)
    diff, se = da - db, np.sqrt(va + vb)
    return diff, se, 2.0 * sps.norm.sf(np.abs(diff / se))


def change_difference(
    a: PairedCounts, b: PairedCounts, alpha: float = 0.05
) -> ChangeDifference | None:
    """The test of "the change on a equals the change on b"; None when either has no items.

    The point difference is the raw one (``change_a - change_b``); the interval (widened to
    hold it, as ``paired.interval_of_counts`` does), z and p are the adjusted ones.
    """
    if a.n == 0 or b.n == 0:
        return None
    adjusted, se, p_value = (
        float(x[0])
        for x in difference_arrays(
            (np.asarray([a.gained]), np.asarray([a.lost]), np.asarray([a.n])),
            (np.asarray([b.gained]), np.asarray([b.lost]), np.asarray([b.n])),
        )
    )
    half = float(sps.norm.ppf(1 - alpha / 2)) * se
    change_a = 100.0 * (a.gained - a.lost) / a.n
    change_b = 100.0 * (b.gained - b.lost) / b.n
    diff = change_a - change_b
    return ChangeDifference(
        n_a=a.n,
        n_b=b.n,
        change_a=change_a,
        change_b=change_b,
        diff=diff,
        low=min(100.0 * (adjusted - half), diff),
        high=max(100.0 * (adjusted + half), diff),
        z=adjusted / se,
        p_value=p_value,
    )
