"""The stopping rule of adaptive sampling: a pure function of the paired outcomes so far.

Each variant's paired differences (variant minus baseline correctness, in the round order)
feed the betting confidence sequence of :mod:`betting`. A tier bound ``b`` is *certified*
once the sequence has excluded every change below ``b`` (its lower capital process reached
``2 / alpha`` at ``b``), and *ruled out* once it has excluded every change at or above
``b``; both are monotone in time. At each look (``Sampling.looks``) the certified tiers take
the fixed-sequence rule (running worst down the ladder, as in ``analysis/stats/certify.py``)
and a variant stops
when its certified tier equals its best case, or at ``max_items``. Kill and resume replay the
same looks on the same prefix of the log, so they stop at the same items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quantmatrix.config import Sampling, Study
from quantmatrix.decide import TIERS, Bounds
from quantmatrix.stopping.betting import bets, log_capital

NEVER = np.iinfo(np.int64).max
FAMILY_ALPHA = 0.05  # chance of any over-certified tier in one model's ladder, at most


def interval_alpha(
    family_alpha: float = FAMILY_ALPHA, n_bounds: int = 3, n_signals: int = 1
) -> float:
    """Two-sided alpha of each variant's interval under the fixed-sequence rule, so that the
    chance of any over-certified tier in one model's ladder is at most ``family_alpha``: each
    lower end is one-sided at ``family_alpha / (n_bounds * n_signals)``."""
    if not 0.0 < family_alpha < 1.0 or n_bounds < 1 or n_signals < 1:
        raise ValueError("family_alpha must lie in (0, 1) and the counts be at least 1")
    return 2.0 * family_alpha / (n_bounds * n_signals)


def study_alpha(study: Study) -> float:
    """Each interval's two-sided alpha in a study: the family-wise 5% over the three tier
    bounds and one or two signals (two when it has generation tasks). The stopping rule and
    the analysis's certified tiers both use it."""
    signals = 2 if any(t.kind == "generation" for t in study.tasks) else 1
    return interval_alpha(FAMILY_ALPHA, n_bounds=len(TIERS) - 1, n_signals=signals)


def crossing_times(
    diffs: np.ndarray, bounds_pp: Sequence[float], alpha: float, horizon: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For paired differences ``diffs`` (``(..., n)``, values in ``[-1, 1]``) and each tier
    bound (pp, best first), the item count at which the bound is certified (lower end >= b)
    and at which it is ruled out (upper end < b); ``NEVER`` if not within ``n``.
    Shapes ``(..., B)``."""
    z = (np.asarray(diffs, dtype=float) + 1.0) / 2.0
    lam = bets(z, alpha, horizon)
    m = (np.asarray(bounds_pp, dtype=float) / 100.0 + 1.0) / 2.0
    z3, lam3 = z[..., None, :], lam[..., None, :]
    threshold = math.log(2.0 / alpha)
    out = []
    for upper in (False, True):
        hit = log_capital(z3, lam3, m, upper) >= threshold
        first = np.argmax(hit, axis=-1) + 1
        out.append(np.where(hit.any(axis=-1), first, NEVER))
    return out[0], out[1]


def tiers_at(
    t: int, certified_at: np.ndarray, ruled_out_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Certified and best-case tier indices (0 = best tier) after ``t`` items."""
    n_bounds = certified_at.shape[-1]
    done = certified_at <= t
    certified = np.where(done.any(axis=-1), np.argmax(done, axis=-1), n_bounds)
    best = (ruled_out_at <= t).sum(axis=-1)
    return certified, np.maximum(best, 0)


@dataclass(frozen=True)
class Stops:
    """Where each variant stands (arrays over ``(..., V)``, ladder order)."""

    n_used: np.ndarray  # items used so far (at the stop, or at the last look evaluated)
    stopped: np.ndarray  # bool
    certified: np.ndarray  # tier index, fixed-sequence rule applied
    best: np.ndarray  # tier index
    next_look: int | None  # item count every running variant needs next; None when all stopped


def walk(
    certified_at: np.ndarray,
    ruled_out_at: np.ndarray,
    looks: Sequence[int],
    available: np.ndarray | int,
) -> Stops:
    """Apply the stopping rule at each look while every running variant has the items
    (``available``: items run per variant, broadcast like ``(..., V)``). Vectorized over any
    leading axes; the variant axis is the second to last of the crossing arrays."""
    shape = certified_at.shape[:-1]
    n_used = np.zeros(shape, dtype=np.int64)
    stopped = np.zeros(shape, dtype=bool)
    own_cert = np.full(shape, certified_at.shape[-1])
    best = np.zeros(shape, dtype=np.int64)
    next_look: int | None = None
    for i, t in enumerate(looks):
        running = ~stopped
        if bool(np.any(running & (np.asarray(available) < t))):
            next_look = t
            break
        cert_t, best_t = tiers_at(t, certified_at, ruled_out_at)
        own_cert = np.where(running, cert_t, own_cert)
        best = np.where(running, best_t, best)
        n_used = np.where(running, t, n_used)
        certified = np.maximum.accumulate(own_cert, axis=-1)
        last = i == len(looks) - 1
        stopped = stopped | (running & ((certified == best) | last))
        if stopped.all():
            break
    certified = np.maximum.accumulate(own_cert, axis=-1)
    return Stops(n_used, stopped, certified, best, next_look if not stopped.all() else None)


def adaptive_stops(
    base: Sequence[bool],
    variants: Sequence[Sequence[bool]],
    sampling: Sampling,
    bounds: Bounds,
    alpha: float,
    total_items: int,
) -> Stops:
    """The stopping rule on one model's log: ``base`` and each variant's correctness in the
    round order, as far as each has run (a variant pairs with the baseline on its prefix);
    bets are tuned to ``sampling.max_items``; ``total_items`` is the length of the order."""
    if not variants:
        empty = np.zeros(0, np.int64)
        return Stops(empty, np.zeros(0, bool), empty, empty, None)
    available = np.asarray([min(len(v), len(base)) for v in variants])
    width = max(len(v) for v in variants)
    pad = np.zeros((len(variants), max(width, 1)))
    for row, var in enumerate(variants):
        n = min(len(var), len(base))
        pad[row, :n] = np.asarray(var[:n], dtype=float) - np.asarray(base[:n], dtype=float)
    levels = [b for _, b in bounds]
    cert_at, out_at = crossing_times(pad, levels, alpha, sampling.max_items)
    return walk(cert_at, out_at, sampling.looks(total_items), available)


def tier_name(index: int) -> str:
    return TIERS[int(index)]
