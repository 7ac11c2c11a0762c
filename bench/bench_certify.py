"""Simulation figures for certified tiers: over-certification, coverage, adaptive saving.

Run: ``python bench/bench_certify.py [--ladders 2000] [--seed 1]`` (about a minute on one
core at 2,000 ladders). Prints, for fixed and adaptive designs, the rate at which a certified
tier is better than the true tier (per variant and per ladder, with exact 95% bounds), the
coverage of the Newcombe and delta-method intervals, and on ladders shaped like the published
one the items adaptive rounds use as a share of the fixed design, at max_items and at the
smallest fixed N that decides as many variants.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from quantmatrix.analysis.stats import simulation as sim
from quantmatrix.analysis.stats.certify import interval_alpha
from quantmatrix.analysis.stats.paired import CERTIFY_METHOD, ratio_change_interval
from quantmatrix.config import Sampling
from quantmatrix.decide import TIER_BOUNDS_BENCH


def _show(name: str, rate: sim.Rate) -> None:
    print(
        f"  {name:<34} {rate.count:>6}/{rate.n:<6} = {rate.rate:.4f}"
        f"  [{rate.low:.4f}, {rate.high:.4f}]"
    )


def _over(label: str, got: sim.Verdicts) -> None:
    print(label)
    _show("over-certified, per variant", sim.rate_of(got.over_certified()))
    _show("over-certified, per ladder (FWER)", sim.rate_of(got.over_certified().any(axis=1)))
    _show("decided", sim.rate_of(got.decided()))
    print(f"  mean items per variant {got.n_used.mean():.0f}, baseline {got.n_base.mean():.0f}")


def worst_case(rng: np.random.Generator, n: int) -> sim.Ladders:
    """Three variants, each just below a different tier bound: the fixed sequence's worst."""
    levels = np.asarray([b for _, b in TIER_BOUNDS_BENCH]) - sim.JUST_BELOW_PP
    flips = rng.uniform(0.005, 0.03, (n, 3))  # few gained items: the lower end's hardest case
    return sim.Ladders(np.full(n, 0.7), np.tile(levels, (n, 1)), flips)


def delta_coverage(rng: np.random.Generator, reps: int, n: int) -> sim.Rate:
    hits = []
    for change in np.tile([0.0, -0.05, -0.15], reps // 3):
        x = rng.beta(8, 4, n)
        y = x * (1 + change) * (1 + rng.uniform(-0.2, 0.2, n))
        got = ratio_change_interval(list(x), list(y))
        hits.append(got is not None and got.low <= 100 * change <= got.high)
    return sim.rate_of(np.asarray(hits))


def published(rng: np.random.Generator, n: int, alpha: float, max_items: int) -> None:
    ladders = sim.published_ladders(rng, n)
    sampling = Sampling(mode="adaptive", min_items=100, max_items=max_items, round=50)
    ada = sim.adaptive_verdicts(ladders, sampling, alpha, rng)
    _over(f"published shape {sim.PUBLISHED_SHAPE}, adaptive to {max_items}", ada)
    per_level = " ".join(f"{x:.0f}" for x in ada.n_used.mean(axis=0))
    print(
        f"  mean items per level: {per_level}; decided per level: "
        + " ".join(f"{x:.2f}" for x in ada.decided().mean(axis=0))
    )
    total = float((ada.n_used.sum(axis=1) + ada.n_base).mean())
    cells = ladders.shape[1] + 1
    print(
        f"  items (variants + baseline) vs fixed N = {max_items}: {total / (cells * max_items):.3f}"
    )
    target = ada.decided().mean()
    for n_fixed in range(100, 4 * max_items + 1, 100):
        fix = sim.fixed_verdicts(ladders, n_fixed, alpha, rng)
        if fix.decided().mean() >= target:
            print(
                f"  fixed design deciding as many ({fix.decided().mean():.3f} >= {target:.3f}): "
                f"N = {n_fixed}; adaptive uses {total / (cells * n_fixed):.3f} of its items"
            )
            return
    print("  no fixed N up to 4x max_items decides as many")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ladders", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-items", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    alpha = interval_alpha(0.05, n_bounds=3)
    started = time.perf_counter()
    print(
        f"each interval two-sided alpha = {alpha:.4f} (family-wise 0.05, fixed sequence, 3 bounds)"
    )
    mixed = sim.mixed_ladders(rng, args.ladders)
    for n_items in (200, 1000):
        _over(
            f"mixed ladders x{args.ladders}, fixed N = {n_items}",
            sim.fixed_verdicts(mixed, n_items, alpha, rng),
        )
    sampling = Sampling(mode="adaptive", min_items=100, max_items=1000, round=50)
    _over(
        f"mixed ladders x{args.ladders}, adaptive 100..1000 by 50",
        sim.adaptive_verdicts(mixed, sampling, alpha, rng),
    )
    worst = worst_case(rng, args.ladders)
    for method in ("tango", "newcombe", "bonett-price"):
        for n_items in (500, 1000):
            used = " (the analysis's)" if method == CERTIFY_METHOD else ""
            _over(
                f"worst case (just below each bound), fixed N = {n_items}, {method}{used}",
                sim.fixed_verdicts(worst, n_items, alpha, rng, method),
            )
    _over(
        "worst case, adaptive 100..1000 by 50", sim.adaptive_verdicts(worst, sampling, alpha, rng)
    )
    print("coverage of 95% intervals")
    _show("Newcombe, N = 100", sim.newcombe_coverage(mixed, 100, 0.05, rng))
    _show("Newcombe, N = 1000", sim.newcombe_coverage(mixed, 1000, 0.05, rng))
    _show("delta-method % change, N = 60", delta_coverage(rng, 3000, 60))
    _show("delta-method % change, N = 600", delta_coverage(rng, 1500, 600))
    published(rng, args.ladders // 2, alpha, args.max_items)
    print(f"took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
