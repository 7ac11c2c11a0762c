"""Hypothesis tests for quantized variants: pure functions over statsmodels and scipy.

Conventions: ``a`` is the higher-precision (or baseline) sample, ``b`` the lower one, and
every difference is ``mean(b) - mean(a)`` (negative = the quantized variant is worse).
Where a library returns NaN for a degenerate sample (n < 2, zero variance), these functions
return a defined value instead, documented per function, so results stay JSON-safe.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from quantmatrix.analysis.stats_power import pooled_sd

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


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence RuntimeWarnings (e.g. scipy's precision loss on near-constant data) inside a
    library call; callers map any resulting NaN to a defined value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(all="ignore"):
            yield


def _arr(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def wilson_ci(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float] | None:
    """Wilson score interval via ``statsmodels.stats.proportion.proportion_confint``.

    Returns None when ``n == 0``. The bounds are clipped to contain the point estimate (at 0 or
    n successes statsmodels' bound can land 1e-17 on the wrong side of it).
    """
    if n <= 0:
        return None
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    p = successes / n
    return min(float(low), p), max(float(high), p)


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Cohen's d of ``b - a`` over the pooled SD (:func:`stats_power.pooled_sd`, numpy).

    0 when both samples are constant and equal; None when otherwise undefined.
    """
    pooled = pooled_sd(a, b)
    if pooled is None:
        return None
    diff = float(_arr(b).mean() - _arr(a).mean())
    if pooled == 0.0:
        return 0.0 if diff == 0.0 else None
    return diff / pooled


def welch_test(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Welch's unpaired t-test via ``scipy.stats.ttest_ind(equal_var=False)``.

    If either sample has fewer than two values, p = 1. If both samples have zero variance,
    p = 1 when the means are equal and p = 0 otherwise.
    """
    xa, xb = _arr(a), _arr(b)
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
        with _quiet():
            res = sps.ttest_ind(xb, xa, equal_var=False)
        stat, dof = _finite(float(res.statistic)), _finite(float(res.df))
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
    exact_p = float(mcnemar([[both, to_wrong], [to_right, neither]], exact=True).pvalue)
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
    with _quiet():
        res = sps.wilcoxon(diffs)
    p_raw = float(res.pvalue)
    return _finite(float(res.statistic)), p_raw if math.isfinite(p_raw) else 1.0


def paired_continuous(a: Sequence[float], b: Sequence[float]) -> PairedContinuousResult:
    """Paired t-test (``scipy.stats.ttest_rel``) and Wilcoxon (``scipy.stats.wilcoxon``).

    All-zero differences give p = 1; constant non-zero differences give a t-test p of 0.
    """
    xa, xb = _arr(a), _arr(b)
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
        with _quiet():
            res = sps.ttest_rel(xb, xa)
        t_stat = _finite(float(res.statistic))
        t_raw = float(res.pvalue)
        t_p = t_raw if math.isfinite(t_raw) else 0.0
    w_stat, w_p = _wilcoxon(diffs)
    return PairedContinuousResult(int(diffs.size), mean_diff, t_stat, t_p, w_stat, w_p)


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
    xa, xb = _arr(a), _arr(b)
    n = int(xa.size)
    delta = float((xb - xa).mean()) if n else 0.0
    if n < 2 or margin <= 0.0:
        return EquivalenceResult("paired", margin, n, delta, 1.0, 1.0, 1.0, False)
    if float(np.std(xb - xa)) == 0.0:
        return _degenerate_tost("paired", margin, n, delta, alpha)
    with _quiet():
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
    xa, xb = _arr(a), _arr(b)
    n = int(xa.size)
    delta = float((xb - xa).mean()) if n else 0.0
    if n < 2 or margin <= 0.0 or bound <= 0.0:
        return EquivalenceResult("paired", margin, n, delta, 1.0, 1.0, 1.0, False)
    padded = np.concatenate([xb - xa, [bound, -bound]])
    with _quiet():
        out = ttost_paired(padded, np.zeros_like(padded), -margin, margin)
    return _tost_result("paired", margin, n, delta, alpha, out)


def tost_unpaired(
    a: Sequence[float], b: Sequence[float], margin: float, alpha: float = 0.05
) -> EquivalenceResult:
    """Unpaired TOST via ``statsmodels.stats.weightstats.ttost_ind(usevar="unequal")``.

    Same degenerate-case rules as :func:`tost_paired`; ``n`` is the smaller sample size.
    """
    xa, xb = _arr(a), _arr(b)
    n = int(min(xa.size, xb.size))
    delta = float(xb.mean() - xa.mean()) if n else 0.0
    if n < 2 or margin <= 0.0:
        return EquivalenceResult("unpaired", margin, n, delta, 1.0, 1.0, 1.0, False)
    if float(np.std(xa)) == 0.0 and float(np.std(xb)) == 0.0:
        return _degenerate_tost("unpaired", margin, n, delta, alpha)
    with _quiet():
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
    xa, xb = _arr(a), _arr(b)
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
