"""Does a loss grow with the context? Intervals over documents (the long-context probe).

Per-position KL is strongly autocorrelated along a document (a hard passage stays hard for
hundreds of tokens) and its level differs from document to document, so positions are not
independent draws: an interval over tokens is far too narrow (the tests' simulation shows it
covering a flat profile's true change well under half the time). The unit of replication is
the document. Each document gives one mean per bucket; then

- a bucket's mean is the mean of its documents' means, with a t-interval (``n - 1`` degrees
  of freedom, statsmodels ``DescrStatsW``);
- the change with context is the last bucket minus the first, paired within each document,
  with a t-interval of the paired differences (the primary test: "grows" when its interval
  lies above 0, "falls" when below);
- the slope of KL per doubling of the position (OLS of the profile's block means on
  log2(position), every block of every document) with a cluster-robust interval, clusters
  the documents (statsmodels, ``use_t``: G - 1 degrees of freedom), which uses the whole
  profile rather than its two ends.

With one document there is no interval (None). All intervals are 95% unless told.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.weightstats import DescrStatsW


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float | None
    high: float | None
    n: int  # documents (or items) it rests on


def mean_interval(values: Sequence[float], alpha: float = 0.05) -> Estimate:
    """The mean with its t-interval (None with fewer than two values)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Estimate(float("nan"), None, None, 0)
    mean = float(x.mean())
    if x.size < 2:
        return Estimate(mean, None, None, 1)
    if float(x.std()) == 0.0:
        return Estimate(mean, mean, mean, int(x.size))
    low, high = DescrStatsW(x).tconfint_mean(alpha=alpha)
    return Estimate(mean, float(low), float(high), int(x.size))


def padded_mean_interval(values: Sequence[float], bound: float, alpha: float = 0.05) -> Estimate:
    """The mean with a t-interval whose spread counts one pseudo-value at each of ``+-bound``
    (``n - 1`` degrees of freedom over the real values), as ``paired.ratio_change_interval``
    pads: questions that all change alike (often all by 0) give a narrow interval, not none."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return Estimate(float(x.mean()) if x.size else float("nan"), None, None, int(x.size))
    mean = float(x.mean())
    spread = float(np.std(np.concatenate([x, [bound, -bound]]), ddof=1))
    half = float(sps.t.ppf(1 - alpha / 2, x.size - 1)) * spread / math.sqrt(x.size)
    return Estimate(mean, mean - half, mean + half, int(x.size))


def paired_change(first: Sequence[float], last: Sequence[float], alpha: float = 0.05) -> Estimate:
    """``last - first`` paired within each unit (document or item), with its t-interval."""
    a, b = np.asarray(first, dtype=float), np.asarray(last, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.size} vs {b.size}")
    return mean_interval(list(b - a), alpha)


def cluster_slope(
    y: Sequence[float], x: Sequence[float], groups: Sequence[int], alpha: float = 0.05
) -> Estimate:
    """OLS slope of ``y`` on ``x`` with a cluster-robust t-interval (clusters ``groups``);
    ``n`` is the number of clusters. None ends with fewer than two clusters."""
    yy, xx, gg = (np.asarray(v, dtype=float) for v in (y, x, groups))
    clusters = int(np.unique(gg).size)
    fit = sm.OLS(yy, sm.add_constant(xx)).fit()
    slope = float(fit.params[1])
    if clusters < 2 or float(np.ptp(xx)) == 0.0:
        return Estimate(slope, None, None, clusters)
    robust = sm.OLS(yy, sm.add_constant(xx)).fit(
        cov_type="cluster", cov_kwds={"groups": gg.astype(int)}, use_t=True
    )
    with np.errstate(invalid="ignore"):  # an exact fit's variance may come out as -0.0
        low, high = (float(v) for v in robust.conf_int(alpha)[1])
    if not (np.isfinite(low) and np.isfinite(high)):
        low = high = slope
    return Estimate(slope, low, high, clusters)


def verdict(change: Estimate) -> str:
    """ "grows" / "falls" when the interval excludes 0, else what cannot be told apart."""
    if change.low is None or change.high is None:
        return "no interval (one document)"
    if change.low > 0:
        return "grows"
    if change.high < 0:
        return "falls"
    return "no change detected"
