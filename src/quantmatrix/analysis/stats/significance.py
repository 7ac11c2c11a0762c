"""Difference tests for quantized variants: pure functions over statsmodels and scipy.

Conventions: ``a`` is the higher-precision (or baseline) sample, ``b`` the lower one, and
every difference is ``mean(b) - mean(a)`` (negative = the quantized variant is worse).
Where a library returns NaN for a degenerate sample (n < 2, zero variance), these functions
return a defined value instead, documented per function, so results stay JSON-safe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar

from quantmatrix.analysis.stats.numeric import as_floats, finite, quiet
from quantmatrix.analysis.stats.power import pooled_sd

MCNEMAR_EXACT_BELOW = 25


@dataclass(frozen=True)
class WelchResult:
    """Unpaired Welch t-test of ``b`` against ``a`` with Cohen's d."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    statistic: float | None
    df: float | None
    p_value: float
    cohen_d: float | None


@dataclass(frozen=True)
class McNemarResult:
    """Paired McNemar test on correctness; flips are counted from ``a`` to ``b``."""

    n_pairs: int
    correct_to_wrong: int
    wrong_to_correct: int
    method: str  # "exact" or "mid-p"
    p_value: float


@dataclass(frozen=True)
class PairedContinuousResult:
    """Paired t-test and Wilcoxon signed-rank test on per-item differences ``b - a``."""

    n_pairs: int
    mean_diff: float
    t_statistic: float | None
    t_p_value: float
    wilcoxon_statistic: float | None
    wilcoxon_p_value: float


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Cohen's d of ``b - a`` over the pooled SD (:func:`power.pooled_sd`, numpy).

    0 when both samples are constant and equal; None when otherwise undefined.
    """
    pooled = pooled_sd(a, b)
    if pooled is None:
        return None
    diff = float(as_floats(b).mean() - as_floats(a).mean())
    if pooled == 0.0:
        return 0.0 if diff == 0.0 else None
    return diff / pooled


def welch_test(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Welch's unpaired t-test via ``scipy.stats.ttest_ind(equal_var=False)``.

    If either sample has fewer than two values, p = 1. If both samples have zero variance,
    p = 1 when the means are equal and p = 0 otherwise.
    """
    xa, xb = as_floats(a), as_floats(b)
    mean_a = float(xa.mean()) if xa.size else 0.0
    mean_b = float(xb.mean()) if xb.size else 0.0
    diff = mean_b - mean_a
    stat: float | None = None
    dof: float | None = None
    if xa.size < 2 or xb.size < 2:
        p_value = 1.0
    elif np.ptp(xa) == 0.0 and np.ptp(xb) == 0.0:
        p_value = 1.0 if diff == 0.0 else 0.0
    else:
        with quiet():
            res = sps.ttest_ind(xb, xa, equal_var=False)
        stat, dof = finite(float(res.statistic)), finite(float(res.df))
        p_raw = float(res.pvalue)
        p_value = p_raw if math.isfinite(p_raw) else (1.0 if diff == 0.0 else 0.0)
    return WelchResult(
        n_a=int(xa.size),
        n_b=int(xb.size),
        mean_a=mean_a,
        mean_b=mean_b,
        diff=diff,
        statistic=stat,
        df=dof,
        p_value=p_value,
        cohen_d=cohens_d(a, b),
    )


def mcnemar_exact_p(both: int, to_wrong: int, to_right: int, neither: int) -> float:
    """Exact (binomial) two-sided McNemar p of a paired 2x2 table, via statsmodels' ``mcnemar``;
    1 when no pair is discordant."""
    table = [[both, to_wrong], [to_right, neither]]
    return min(1.0, float(mcnemar(table, exact=True).pvalue))


def mcnemar_test(a: Sequence[bool], b: Sequence[bool]) -> McNemarResult:
    """McNemar's test via ``statsmodels.stats.contingency_tables.mcnemar``.

    Exact binomial test when there are fewer than 25 discordant pairs; otherwise the mid-p
    variant: the exact two-sided p minus the point probability ``scipy.stats.binom.pmf``.
    """
    if len(a) != len(b):
        raise ValueError("paired samples must have equal length")
    pairs = list(zip((bool(x) for x in a), (bool(y) for y in b), strict=True))
    both = sum(1 for x, y in pairs if x and y)
    to_wrong = sum(1 for x, y in pairs if x and not y)
    to_right = sum(1 for x, y in pairs if not x and y)
    neither = len(pairs) - both - to_wrong - to_right
    exact_p = mcnemar_exact_p(both, to_wrong, to_right, neither)
    discordant = to_wrong + to_right
    if discordant < MCNEMAR_EXACT_BELOW:
        method, p_value = "exact", exact_p
    elif to_wrong == to_right:
        method, p_value = "mid-p", 1.0
    else:
        point = float(sps.binom.pmf(min(to_wrong, to_right), discordant, 0.5))
        method, p_value = "mid-p", max(0.0, exact_p - point)
    return McNemarResult(len(pairs), to_wrong, to_right, method, min(1.0, p_value))


def _wilcoxon(diffs: np.ndarray) -> tuple[float | None, float]:
    """``scipy.stats.wilcoxon`` on the differences; p = 1 when all differences are zero."""
    if not np.any(diffs != 0.0):
        return None, 1.0
    with quiet():
        res = sps.wilcoxon(diffs)
    p_raw = float(res.pvalue)
    return finite(float(res.statistic)), p_raw if math.isfinite(p_raw) else 1.0


def paired_continuous(a: Sequence[float], b: Sequence[float]) -> PairedContinuousResult:
    """Paired t-test (``scipy.stats.ttest_rel``) and Wilcoxon (``scipy.stats.wilcoxon``).

    All-zero differences give p = 1; constant non-zero differences give a t-test p of 0.
    """
    xa, xb = as_floats(a), as_floats(b)
    if xa.size != xb.size:
        raise ValueError("paired samples must have equal length")
    diffs = xb - xa
    mean_diff = float(diffs.mean()) if diffs.size else 0.0
    t_stat: float | None = None
    if diffs.size < 2 or not np.any(diffs != 0.0):
        t_p = 1.0
    elif np.ptp(diffs) == 0.0:
        t_p = 0.0  # constant non-zero shift: t is infinite
    else:
        with quiet():
            res = sps.ttest_rel(xb, xa)
        t_stat = finite(float(res.statistic))
        t_raw = float(res.pvalue)
        t_p = t_raw if math.isfinite(t_raw) else 0.0
    w_stat, w_p = _wilcoxon(diffs)
    return PairedContinuousResult(int(diffs.size), mean_diff, t_stat, t_p, w_stat, w_p)
