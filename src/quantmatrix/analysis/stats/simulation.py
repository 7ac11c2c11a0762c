"""Synthetic ladders with known true changes, to show that certified tiers are right.

Used by ``bench/bench_certify.py`` and the fast test. A ladder is a baseline accuracy and the
true accuracy change of each variant below it; outcomes are paired per item: the baseline is
right with probability ``p0``, and each variant flips an item's correctness with probability
``r = flip + |change|`` in all, split so that ``P(wrong->right) - P(right->wrong) = change``
exactly. Everything is vectorized over ladders (axis 0) and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from quantmatrix.analysis.stats.paired import CERTIFY_METHOD, Method, newcombe_bounds, paired_bounds
from quantmatrix.config import Sampling
from quantmatrix.decide import TIER_BOUNDS_BENCH, Bounds
from quantmatrix.stopping.rule import crossing_times, walk

JUST_BELOW_PP = 0.01  # "just below a bound": the hardest true change to certify correctly
PUBLISHED_SHAPE = (0.0, -0.3, -0.6, -1.2, -7.0, -20.0)  # Q8_0 .. Q2_K: flat, then a cliff
PUBLISHED_BASE = 351 / 485  # the published baseline accuracy


@dataclass(frozen=True)
class Ladders:
    """``R`` synthetic ladders of ``V`` variants each."""

    base_accuracy: np.ndarray  # (R,)
    changes_pp: np.ndarray  # (R, V), true changes, ladder order
    flip: np.ndarray  # (R, V), flips beyond |change|

    @property
    def shape(self) -> tuple[int, int]:
        r, v = self.changes_pp.shape
        return int(r), int(v)


@dataclass(frozen=True)
class Verdicts:
    """Tier indices per ladder and variant (0 = best tier), and the items each used."""

    true: np.ndarray
    certified: np.ndarray
    best: np.ndarray
    n_used: np.ndarray  # (R, V)
    n_base: np.ndarray  # (R,)

    def over_certified(self) -> np.ndarray:
        out: np.ndarray = self.certified < self.true
        return out

    def decided(self) -> np.ndarray:
        out: np.ndarray = self.certified == self.best
        return out


@dataclass(frozen=True)
class Rate:
    """An observed rate with its exact (Clopper-Pearson) 95% interval."""

    count: int
    n: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.count / self.n


def rate_of(hits: np.ndarray) -> Rate:
    count, n = int(np.sum(hits)), int(np.size(hits))
    low, high = proportion_confint(count, n, alpha=0.05, method="beta")
    return Rate(count, n, float(low), float(high))


def tier_index(values_pp: np.ndarray, bounds: Bounds) -> np.ndarray:
    """Tier index of each change (0 = best): the number of bounds it falls below."""
    levels = np.asarray([b for _, b in bounds])
    out: np.ndarray = (np.asarray(values_pp)[..., None] < levels).sum(axis=-1)
    return out


def mixed_ladders(rng: np.random.Generator, n_ladders: int, n_variants: int = 6) -> Ladders:
    """Ladders whose true changes are, in equal shares, exactly at a tier bound, just below
    one, or uniform on [-20, +1] pp; sorted down each ladder."""
    levels = np.asarray([b for _, b in TIER_BOUNDS_BENCH])
    kind = rng.integers(0, 3, size=(n_ladders, n_variants))
    at = rng.choice(levels, size=(n_ladders, n_variants))
    changes = np.where(
        kind == 0,
        at,
        np.where(kind == 1, at - JUST_BELOW_PP, rng.uniform(-20, 1, (n_ladders, n_variants))),
    )
    return Ladders(
        base_accuracy=rng.uniform(0.5, 0.8, n_ladders),
        changes_pp=-np.sort(-changes, axis=1),
        flip=rng.uniform(0.01, 0.06, (n_ladders, n_variants)),
    )


def published_ladders(rng: np.random.Generator, n_ladders: int, jitter_pp: float = 0.3) -> Ladders:
    """Ladders shaped like the published one: flat to Q4_K_M, a cliff at Q3_K_S and Q2_K."""
    shape = np.asarray(PUBLISHED_SHAPE)
    changes = shape + rng.uniform(-jitter_pp, jitter_pp, (n_ladders, shape.size))
    return Ladders(
        base_accuracy=np.full(n_ladders, PUBLISHED_BASE),
        changes_pp=np.minimum(changes, 0.5),
        flip=np.full((n_ladders, shape.size), 0.03),
    )


def outcomes(
    ladders: Ladders, n_items: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paired correctness: baseline ``(R, n)`` and variants ``(R, V, n)``."""
    p0 = ladders.base_accuracy[:, None]
    delta = ladders.changes_pp / 100.0
    r = ladders.flip + np.abs(delta)
    lose = ((r - delta) / 2.0) / p0  # P(wrong | baseline right)
    gain = ((r + delta) / 2.0) / (1.0 - p0)  # P(right | baseline wrong)
    base = rng.random((p0.shape[0], n_items)) < p0
    u = rng.random((*ladders.changes_pp.shape, n_items))
    var = np.where(base[:, None, :], u >= lose[..., None], u < gain[..., None])
    return base, var


def fixed_verdicts(
    ladders: Ladders,
    n_items: int,
    alpha: float,
    rng: np.random.Generator,
    method: Method = CERTIFY_METHOD,
) -> Verdicts:
    """Every variant on ``n_items`` items, paired intervals by ``method`` (the analysis's, by
    default) at two-sided ``alpha``, the fixed-sequence rule down each ladder."""
    base, var = outcomes(ladders, n_items, rng)
    b = base[:, None, :]
    cells = ((b & var).sum(-1), (~b & var).sum(-1), (b & ~var).sum(-1), (~b & ~var).sum(-1))
    low, high = paired_bounds(cells, alpha, method)
    certified = np.maximum.accumulate(tier_index(100.0 * low, TIER_BOUNDS_BENCH), axis=1)
    r, v = ladders.shape
    return Verdicts(
        true=tier_index(ladders.changes_pp, TIER_BOUNDS_BENCH),
        certified=certified,
        best=tier_index(100.0 * high, TIER_BOUNDS_BENCH),
        n_used=np.full((r, v), n_items),
        n_base=np.full(r, n_items),
    )


def adaptive_verdicts(
    ladders: Ladders, sampling: Sampling, alpha: float, rng: np.random.Generator
) -> Verdicts:
    """Adaptive rounds with the betting confidence sequence and the stopping rule of
    :mod:`adaptive`, up to ``sampling.max_items`` items."""
    base, var = outcomes(ladders, sampling.max_items, rng)
    diffs = var.astype(float) - base[:, None, :].astype(float)
    cert_at, out_at = crossing_times(
        diffs, [b for _, b in TIER_BOUNDS_BENCH], alpha, sampling.max_items
    )
    stops = walk(cert_at, out_at, sampling.looks(sampling.max_items), sampling.max_items)
    return Verdicts(
        true=tier_index(ladders.changes_pp, TIER_BOUNDS_BENCH),
        certified=stops.certified,
        best=stops.best,
        n_used=stops.n_used,
        n_base=stops.n_used.max(axis=1),
    )


def newcombe_coverage(
    ladders: Ladders, n_items: int, alpha: float, rng: np.random.Generator
) -> Rate:
    """Share of variants whose two-sided Newcombe interval covers the true change."""
    base, var = outcomes(ladders, n_items, rng)
    b = base[:, None, :]
    low, high = newcombe_bounds(
        (b & var).sum(-1), (~b & var).sum(-1), (b & ~var).sum(-1), (~b & ~var).sum(-1), alpha
    )
    truth = ladders.changes_pp / 100.0
    return rate_of((low <= truth) & (truth <= high))
