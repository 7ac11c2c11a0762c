"""The statistical core of certified tiers: paired intervals (against published worked
examples), the three tiers and the fixed-sequence rule, agreement, the betting confidence
sequence, the round order and the stopping rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantmatrix import decide
from quantmatrix.analysis.stats import agreement, certify, equivalence, paired
from quantmatrix.analysis.stats import sequential as seq
from quantmatrix.stopping import betting
from quantmatrix.stopping import rule as adaptive

# Fagerland, Lydersen & Laake (2017), "Statistical Analysis of Contingency Tables", ch. 8:
# complete response before/after consolidation therapy (Cavo et al. 2012), the paired table
# [[59, 6], [16, 80]]; difference -0.0621, Newcombe square-and-add 95% CI -0.1186 to -0.0046,
# Bonett-Price Wald 95% CI -0.1195 to -0.0032 (four decimals as printed there).
CAVO = paired.PairedCounts(both=59, gained=6, lost=16, neither=80)


def _vectors(c: paired.PairedCounts) -> tuple[list[bool], list[bool]]:
    base = [True] * c.both + [False] * c.gained + [True] * c.lost + [False] * c.neither
    var = [True] * c.both + [True] * c.gained + [False] * c.lost + [False] * c.neither
    return base, var


def test_newcombe_matches_published_example() -> None:
    base, var = _vectors(CAVO)
    got = paired.paired_change_interval(base, var)
    assert got.n == 161
    assert round(got.change / 100, 4) == -0.0621
    assert (round(got.low / 100, 4), round(got.high / 100, 4)) == (-0.1186, -0.0046)


def test_bonett_price_matches_published_example_and_the_tost() -> None:
    got = paired.interval_of_counts(CAVO, method="bonett-price")
    assert (round(got.low / 100, 4), round(got.high / 100, 4)) == (-0.1195, -0.0032)
    # the equivalence test uses the same adjustment: its lower one-sided p at margin -low is
    # the interval's one-sided alpha
    base, var = _vectors(CAVO)
    tost = equivalence.tost_paired_binary(base, var, margin=-got.low / 100)
    assert tost.p_lower == pytest.approx(0.025, abs=1e-9)


def test_unknown_method_and_unequal_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="newcombe, bonett-price or tango"):
        paired.interval_of_counts(CAVO, method="wald")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ in length"):
        paired.paired_change_interval([True], [True, False])


def test_no_items_is_uninformative() -> None:
    got = paired.paired_change_interval([], [])
    assert (got.low, got.high) == (-100.0, 100.0)
    assert not certify.tier_range(
        certify.Interval(got.change, got.low, got.high), decide.TIER_BOUNDS
    ).decided


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=120))
def test_newcombe_contains_point_and_mirrors(pairs: list[tuple[bool, bool]]) -> None:
    base, var = [a for a, _ in pairs], [b for _, b in pairs]
    fwd, back = paired.paired_change_interval(base, var), paired.paired_change_interval(var, base)
    assert fwd.low <= fwd.change <= fwd.high
    assert fwd.low >= -100.0 and fwd.high <= 100.0
    assert fwd.low == pytest.approx(-back.high, abs=1e-9)
    assert fwd.high == pytest.approx(-back.low, abs=1e-9)


def test_paired_is_much_narrower_than_unpaired_at_few_flips() -> None:
    # the figure: 2% of answers differ, n = 200 -> about +-2pp paired
    got = paired.interval_of_counts(paired.PairedCounts(118, 2, 2, 78))
    assert got.high - got.low < 5.0


def test_ratio_change_interval() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.9, 300)
    var = base * 0.9 * (1 + rng.uniform(-0.1, 0.1, 300))
    got = paired.ratio_change_interval(list(base), list(var))
    assert got is not None
    assert got.low < -10.0 < got.high and got.high - got.low < 4.0
    same = paired.ratio_change_interval([0.5] * 10, [0.5] * 10)
    assert same is not None and same.change == 0.0 and same.high - same.low > 10.0
    assert paired.ratio_change_interval([0.5], [0.5]) is None
    assert paired.ratio_change_interval([0.0, 0.0], [0.5, 0.5]) is None


# --- tiers ------------------------------------------------------------------------------


def test_per_signal_bounds_are_the_published_ones() -> None:
    assert [b for _, b in decide.TIER_BOUNDS_BENCH] == [-3.0, -5.0, -10.0]
    assert [b for _, b in decide.TIER_BOUNDS_GEN] == [-3.0, -8.0, -15.0]
    assert decide.tier_within(-6.0, decide.TIER_BOUNDS_GEN) == "acceptable"
    assert decide.tier_of_delta(-6.0) == "concerning"
    assert decide.tier(None, -6.0) == "acceptable"  # generation under its own bounds
    assert decide.worse("negligible", "concerning", "acceptable") == "concerning"


def test_three_tiers_of_an_interval() -> None:
    got = certify.tier_range(certify.Interval(-1.0, -4.0, 1.5), decide.TIER_BOUNDS_BENCH)
    assert (got.point, got.certified, got.best, got.decided) == (
        "negligible",
        "acceptable",
        "negligible",
        False,
    )
    done = certify.tier_range(certify.Interval(-1.0, -2.5, 0.4), decide.TIER_BOUNDS_BENCH)
    assert done.decided and done.certified_safe


def test_fixed_sequence_caps_lower_variants() -> None:
    ivs = [certify.Interval(-1.0, -4.0, 2.0), certify.Interval(-0.5, -2.0, 1.0)]
    got = certify.certify_ladder(ivs, decide.TIER_BOUNDS_BENCH)
    # the second alone would be certified negligible; the one above it is not
    assert [r.certified for r in got] == ["acceptable", "acceptable"]
    assert got[1].best == "negligible"
    assert certify.interval_alpha(0.05, 3) == pytest.approx(0.05 / 1.5)
    with pytest.raises(ValueError):
        certify.interval_alpha(0.0)


def test_combine_and_hold_out_of_negligible() -> None:
    bench = certify.TierRange("negligible", "negligible", "negligible")
    gen = certify.TierRange("negligible", "acceptable", "negligible")
    both = certify.combine(bench, gen)
    assert both is not None and both.certified == "acceptable" and not both.decided
    assert certify.combine(None, None) is None
    held = certify.hold_out_of_negligible(bench, "unparsed rose")
    assert (held.point, held.certified, held.best, held.note) == (
        "acceptable",
        "acceptable",
        "acceptable",
        "unparsed rose",
    )


# --- agreement --------------------------------------------------------------------------


def test_flips_bound_the_change() -> None:
    base, var = _vectors(CAVO)
    got = agreement.flips(base, var)
    assert (got.correct_to_wrong.count, got.wrong_to_correct.count, got.any_flip.count) == (
        16,
        6,
        22,
    )
    assert got.any_flip.low is not None and got.any_flip.low < 22 / 161 < (got.any_flip.high or 0)
    bound = got.change_bound_pp
    assert bound is not None and bound >= abs(paired.interval_of_counts(CAVO).low)


def test_same_answer_rate_ignores_two_unparsed() -> None:
    got = agreement.same_answer_rate(["A", "B", None, "C"], ["A", "C", None, "C"])
    assert (got.count, got.n) == (2, 4)


def test_unparsed_rise_keeps_out_of_negligible() -> None:
    # the demo's Q2_K: 10 of 60 replies unread vs 2 of 60 at F16
    base = [True, True] + [False] * 58
    var = [False, False] + [True] * 10 + [False] * 48
    rise = agreement.unparsed_rise(base, var)
    assert rise.significant and "2/60 to 10/60" in rise.reason
    assert not agreement.unparsed_rise(var, base).significant  # a fall is not a rise
    assert not agreement.unparsed_rise(base, base).significant


# --- the confidence sequence --------------------------------------------------------------


def test_sequence_is_valid_at_every_time() -> None:
    """Over 2,000 seeded sequences of 400 paired differences with a known mean change of
    -2pp, the share whose running interval ever excludes the truth is at most alpha."""
    rng = np.random.default_rng(11)
    diffs = rng.choice([-1.0, 0.0, 1.0], p=[0.05, 0.93, 0.02], size=(2000, 400))
    cert, out = adaptive.crossing_times(diffs, [-2.0], alpha=0.05)
    missed = (cert[..., 0] <= 400) | (out[..., 0] <= 400)
    # a bound is "certified" when the truth (-2pp) is excluded from below, "ruled out" from above
    assert missed.mean() <= 0.05


def test_sequence_interval() -> None:
    got = betting.confidence_sequence([0.0] * 300)
    assert got.low == pytest.approx(-got.high) and 0.0 < got.high < 0.1
    newcombe = paired.interval_of_counts(paired.PairedCounts(180, 0, 0, 120))
    assert 100 * got.high > newcombe.high  # the price of looking at every round
    pc = seq.paired_change_sequence([True] * 100, [True] * 95 + [False] * 5, horizon=100)
    assert pc.low <= -5.0 <= pc.high and pc.method == "betting-cs"
    with pytest.raises(ValueError, match="must lie in"):
        betting.confidence_sequence([2.0])
    assert betting.confidence_sequence([]).low == -1.0
