"""Anytime-valid intervals for adaptive sampling: a betting confidence sequence (numpy).

The method is Waudby-Smith & Ramdas (2024, JRSS-B 86:1, "Estimating means of bounded random
variables by betting"): the hedged capital process with predictable plug-in empirical-
Bernstein bets, ``theta = 1/2`` and bets truncated at ``1 / (2 m)`` and ``1 / (2 (1 - m))``,
i.e. the defaults of ``confseq.betting.betting_cs``. The ``confseq`` package itself is not
used: its only release (0.0.11, an sdist) needs the Boost headers (>= 1.70) to build its C++
boundaries module, and once built its Python modules evaluate ``np.float_`` at import, which
NumPy 2 removed (this project runs NumPy 2.x); it also pulls matplotlib, pandas, multiprocess
and pytest in at run time.

For a candidate mean ``m`` of values in ``[0, 1]`` the two capital processes are
``K+_t(m) = prod (1 + l+_i (z_i - m))`` and ``K-_t(m) = prod (1 - l-_i (z_i - m))``; ``m`` is
excluded at time ``t`` when ``max(K+, K-) / 2 >= 1 / alpha``. ``K+`` falls and ``K-`` rises
with ``m``, so each time's set is an interval found by bisection, not a grid. By Ville's
inequality the running intersection over all times covers the true mean at every time at
once with probability ``>= 1 - alpha``, so a variant may stop at any round the data choose.
Paired differences of two booleans lie in ``[-1, 1]`` and are mapped to ``[0, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TRUNCATION = 0.5
BISECTION_STEPS = 50


@dataclass(frozen=True)
class SequenceInterval:
    """The confidence-sequence interval of a bounded mean after ``n`` observations."""

    n: int
    mean: float
    low: float
    high: float
    alpha: float


def bets(z: np.ndarray, alpha: float, horizon: int | None = None) -> np.ndarray:
    """Predictable plug-in bets ``sqrt(2 log(2/alpha) / (s2_{t-1} h_t))`` over the last axis,
    ``h_t = t log(1 + t)`` or, given a ``horizon`` fixed in advance (``max_items``), ``h_t =
    horizon`` (confseq's ``fixed_n``: narrower near the horizon, valid at every time all the
    same). ``s2`` is the running variance with one prior observation (mean 1/2, var 1/4)."""
    n = z.shape[-1]
    t = np.arange(1, n + 1, dtype=float)
    mu = np.minimum((0.5 + np.cumsum(z, axis=-1)) / (t + 1), 1.0)
    s2 = (0.25 + np.cumsum((z - mu) ** 2, axis=-1)) / (t + 1)
    s2_prev = np.concatenate([np.full((*z.shape[:-1], 1), 0.25), s2[..., :-1]], axis=-1)
    scale = t * np.log1p(t) if horizon is None else np.full(n, float(horizon))
    out: np.ndarray = np.sqrt(2.0 * math.log(2.0 / alpha) / (s2_prev * scale))
    return out


def log_capital(z: np.ndarray, lam: np.ndarray, m: np.ndarray, upper: bool) -> np.ndarray:
    """Log capital path (last axis = time) against mean ``m`` (broadcast on the leading axes):
    ``upper=False`` is ``K+`` (evidence that the mean is above ``m``), ``True`` is ``K-``."""
    m = np.asarray(m, dtype=float)[..., None]
    with np.errstate(all="ignore"):
        if upper:
            step = -np.minimum(lam, TRUNCATION / (1.0 - m)) * (z - m)
        else:
            step = np.minimum(lam, TRUNCATION / m) * (z - m)
        return np.cumsum(np.log1p(step), axis=-1)


def excluded(
    z: np.ndarray, lam: np.ndarray, m: np.ndarray, alpha: float, upper: bool
) -> np.ndarray:
    """Whether ``m`` was excluded (below the sequence, or above with ``upper``) at some time."""
    out: np.ndarray = np.max(log_capital(z, lam, m, upper), axis=-1) >= math.log(2.0 / alpha)
    return out


def _bisect(z: np.ndarray, lam: np.ndarray, alpha: float, upper: bool) -> np.ndarray:
    """The outermost ``m`` still excluded on one side (conservative end of the interval)."""
    shape = z.shape[:-1]
    out, inside = np.zeros(shape), np.ones(shape)  # out: excluded (or the edge); inside: not
    if upper:
        out, inside = np.ones(shape), np.zeros(shape)
    for _ in range(BISECTION_STEPS):
        mid = (out + inside) / 2.0
        gone = excluded(z, lam, mid, alpha, upper)
        out, inside = np.where(gone, mid, out), np.where(gone, inside, mid)
    return out


def unit_interval(
    z: np.ndarray, alpha: float, horizon: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Running-intersection bounds of the mean of ``z`` in ``[0, 1]`` after all of the last
    axis, vectorized over the leading axes."""
    lam = bets(z, alpha, horizon)
    return _bisect(z, lam, alpha, upper=False), _bisect(z, lam, alpha, upper=True)


def confidence_sequence(
    values: Sequence[float],
    lo: float = -1.0,
    hi: float = 1.0,
    alpha: float = 0.05,
    horizon: int | None = None,
) -> SequenceInterval:
    """Anytime-valid ``1 - alpha`` interval of the mean of ``values`` (each in ``[lo, hi]``,
    in their observed order) after all of them, bets as in :func:`bets`. No values give
    ``[lo, hi]``."""
    x = np.asarray(values, dtype=float)
    if not hi > lo:
        raise ValueError(f"the range [{lo}, {hi}] is empty")
    if x.size and (float(x.min()) < lo or float(x.max()) > hi):
        raise ValueError(f"values must lie in [{lo}, {hi}]")
    if x.size == 0:
        return SequenceInterval(0, 0.0, lo, hi, alpha)
    low, high = unit_interval((x - lo) / (hi - lo), alpha, horizon)
    mean = float(x.mean())
    return SequenceInterval(
        int(x.size),
        mean,
        min(lo + (hi - lo) * float(low), mean),
        max(lo + (hi - lo) * float(high), mean),
        alpha,
    )
