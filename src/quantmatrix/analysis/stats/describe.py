"""Descriptive statistics: the Wilson CI of an accuracy, a paired bootstrap CI of accuracy
deltas, and timing outliers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

DEFAULT_SEED = 42
DEFAULT_RESAMPLES = 2000
IQR_K = 1.5


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile bootstrap CI of the paired mean difference ``b - a``."""

    n: int
    delta: float
    low: float | None
    high: float | None
    confidence: float
    n_resamples: int
    seed: int


@dataclass(frozen=True)
class TimingSummary:
    """IQR outliers (Tukey fences) and coefficient of variation of one timing series."""

    n: int
    mean: float | None
    median: float | None
    q1: float | None
    q3: float | None
    low_fence: float | None
    high_fence: float | None
    outliers: tuple[int, ...]  # indices into the series
    cv: float | None


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


def bootstrap_delta_ci(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Paired percentile bootstrap via ``scipy.stats.bootstrap`` with a seeded
    ``numpy.random.default_rng(seed)``: items are resampled, so both variants' outcomes on an
    item move together. CI bounds are None with fewer than two items.
    """
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = int(diffs.size)
    delta = float(diffs.mean()) if n else 0.0
    if n < 2:
        return BootstrapResult(n, delta, None, None, confidence, n_resamples, seed)
    res = sps.bootstrap(
        (diffs,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return BootstrapResult(
        n=n,
        delta=delta,
        low=low if math.isfinite(low) else None,
        high=high if math.isfinite(high) else None,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Sample CV (SD with ddof=1 over the mean) via ``scipy.stats.variation``.

    None with fewer than two values or a zero mean.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or float(arr.mean()) == 0.0:
        return None
    cv = float(sps.variation(arr, ddof=1))
    return cv if math.isfinite(cv) else None


def iqr_outliers(values: Sequence[float], k: float = IQR_K) -> TimingSummary:
    """Tukey fences ``[Q1 - k*IQR, Q3 + k*IQR]`` with quartiles from ``numpy.percentile``
    (linear interpolation); values outside are outliers. Also reports the CV.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return TimingSummary(0, None, None, None, None, None, None, (), None)
    q1, median, q3 = (float(q) for q in np.percentile(arr, [25.0, 50.0, 75.0]))
    spread = q3 - q1
    low_fence, high_fence = q1 - k * spread, q3 + k * spread
    outliers = tuple(int(i) for i in np.flatnonzero((arr < low_fence) | (arr > high_fence)))
    return TimingSummary(
        n=int(arr.size),
        mean=float(arr.mean()),
        median=median,
        q1=q1,
        q3=q3,
        low_fence=low_fence,
        high_fence=high_fence,
        outliers=outliers,
        cv=coefficient_of_variation(values),
    )
