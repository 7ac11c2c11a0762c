"""Simulation with known truth: certified tiers are rarely better than the true tier, the
paired interval covers, and adaptive rounds save items on a published-shaped ladder."""

from __future__ import annotations

import numpy as np

from quantmatrix.analysis.stats import simulation as sim
from quantmatrix.analysis.stats.certify import interval_alpha
from quantmatrix.config import Sampling

ALPHA = interval_alpha(0.05, n_bounds=3)  # each interval's two-sided alpha
LADDERS = 1000  # of 6 variants, a third of the true changes at a bound, a third just below


def test_fixed_design_over_certifies_at_most_5_percent() -> None:
    rng = np.random.default_rng(20240613)
    got = sim.fixed_verdicts(sim.mixed_ladders(rng, LADDERS), 400, ALPHA, rng)
    family = sim.rate_of(got.over_certified().any(axis=1))
    # the exact 95% upper bound of the family-wise rate, over 1,000 ladders
    assert family.high <= 0.05, family
    assert sim.rate_of(got.over_certified()).high <= 0.05


def test_adaptive_design_over_certifies_at_most_5_percent() -> None:
    rng = np.random.default_rng(20240614)
    sampling = Sampling(mode="adaptive", min_items=100, max_items=600, round=50)
    got = sim.adaptive_verdicts(sim.mixed_ladders(rng, LADDERS), sampling, ALPHA, rng)
    assert sim.rate_of(got.over_certified().any(axis=1)).high <= 0.05
    assert (got.n_used <= 600).all()


def test_newcombe_interval_covers() -> None:
    rng = np.random.default_rng(5)
    got = sim.newcombe_coverage(sim.mixed_ladders(rng, 500), 300, 0.05, rng)
    slack = 3 * np.sqrt(0.95 * 0.05 / got.n)  # three Monte-Carlo standard errors
    assert got.rate >= 0.95 - slack, got


def test_adaptive_saves_items_on_the_published_shape() -> None:
    rng = np.random.default_rng(9)
    ladders = sim.published_ladders(rng, 200)
    sampling = Sampling(mode="adaptive", min_items=100, max_items=1500, round=50)
    got = sim.adaptive_verdicts(ladders, sampling, ALPHA, rng)
    items = got.n_used.sum(axis=1) + got.n_base
    assert items.mean() / (1500 * 7) < 0.8
    assert got.decided()[:, [0, 1, 5]].mean() > 0.95  # flat top and the cliff decide
    assert not got.over_certified().any()
