"""Adaptive sampling: the seeded stratified round order and the stopping rule."""

from __future__ import annotations

import numpy as np
import pytest

from quantmatrix import decide
from quantmatrix.config import Sampling
from quantmatrix.stopping import rounds
from quantmatrix.stopping import rule as adaptive

STRATA = {
    **{f"mmlu|{i:03d}": rounds.stratum("mmlu", "law") for i in range(60)},
    **{f"mmlu|{i:03d}b": rounds.stratum("mmlu", "math") for i in range(30)},
    **{f"arc|{i:03d}": rounds.stratum("arc", None) for i in range(10)},
}


def test_round_order_is_seeded_and_independent_of_mapping_order() -> None:
    order = rounds.round_order(STRATA, seed=7)
    assert sorted(order) == sorted(STRATA)
    assert rounds.round_order(dict(reversed(list(STRATA.items()))), seed=7) == order
    assert rounds.round_order(STRATA, seed=8) != order


def test_every_prefix_is_stratified() -> None:
    order = rounds.round_order(STRATA, seed=3)
    sizes = {s: sum(1 for v in STRATA.values() if v == s) for s in set(STRATA.values())}
    for t in range(1, len(order) + 1):
        for name, size in sizes.items():
            got = sum(1 for key in order[:t] if STRATA[key] == name)
            assert abs(got - t * size / len(order)) <= 1.0


def test_looks_and_rounds() -> None:
    s = Sampling(mode="adaptive", min_items=20, max_items=70, round=20)
    assert s.looks(1000) == [20, 40, 60, 70]
    assert s.looks(50) == [20, 40, 50]
    cut = rounds.in_rounds(rounds.round_order(STRATA, 1), s)
    assert [len(r) for r in cut] == [20, 20, 20, 10]
    with pytest.raises(ValueError, match="min_items <= max_items"):
        Sampling(mode="adaptive", min_items=50, max_items=10)
    with pytest.raises(ValueError, match=r"fixed.*adaptive"):
        Sampling(mode="sometimes")


def _ladder(n: int, seed: int) -> tuple[list[bool], list[list[bool]]]:
    rng = np.random.default_rng(seed)
    base = rng.random(n) < 0.7
    near = base.copy()
    flip = rng.random(n) < 0.01
    near[flip] = ~near[flip]
    far = base & (rng.random(n) > 0.3)  # loses 30% of the right answers: about -21pp
    return list(base), [list(near), list(far)]


def test_stopping_rule_decides_and_stops_early() -> None:
    base, variants = _ladder(1500, 0)
    sampling = Sampling(mode="adaptive", min_items=100, max_items=1500, round=50)
    stops = adaptive.adaptive_stops(base, variants, sampling, decide.TIER_BOUNDS, 0.0333, 1500)
    assert stops.stopped.all() and stops.next_look is None
    assert [adaptive.tier_name(i) for i in stops.certified] == ["negligible", "unacceptable"]
    assert (stops.certified == stops.best).all()
    assert (stops.n_used < 1500).all()


def test_stopping_rule_is_a_function_of_the_log_prefix() -> None:
    """Replaying a shorter log (a kill) asks for the next look; the full log gives the
    same stops as a resumed run that only has the items each variant needed."""
    base, variants = _ladder(1500, 1)
    sampling = Sampling(mode="adaptive", min_items=100, max_items=1500, round=50)
    full = adaptive.adaptive_stops(base, variants, sampling, decide.TIER_BOUNDS, 0.0333, 1500)
    trimmed = [v[: int(n)] for v, n in zip(variants, full.n_used, strict=True)]
    again = adaptive.adaptive_stops(
        base[: int(full.n_used.max())], trimmed, sampling, decide.TIER_BOUNDS, 0.0333, 1500
    )
    assert again.n_used.tolist() == full.n_used.tolist()
    assert again.certified.tolist() == full.certified.tolist() and again.next_look is None
    early = adaptive.adaptive_stops(
        base[:120], [v[:120] for v in variants], sampling, decide.TIER_BOUNDS, 0.0333, 1500
    )
    assert early.next_look == 150 and not early.stopped.any()
