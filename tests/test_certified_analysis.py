"""Certified blocks of the analysis: values against hand-computed paired intervals on a fake
run, the fixed sequence down the ladder, the unparsed hold-out, the adaptive design's
intervals and tiers, and Tango's score interval against a numerical inversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from quantmatrix.analysis.build import analyze
from quantmatrix.analysis.certified_signals import Item, fixed_bench, mc_items, prefix
from quantmatrix.analysis.stats import certify
from quantmatrix.analysis.stats import simulation as sim
from quantmatrix.analysis.stats.paired import PairedCounts, interval_of_counts, tango_bounds
from quantmatrix.analysis.stats.sequential import paired_change_sequence
from quantmatrix.backends.fake import FakeBackend
from quantmatrix.config import parse_study
from quantmatrix.decide import TIER_BOUNDS_BENCH, worse
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.adaptive import round_plan
from quantmatrix.runlog import RunLog
from quantmatrix.stopping.rule import adaptive_stops, interval_alpha, tier_name
from quantmatrix.tasks.plan import plan_samples
from tests.conftest import fake_study_dict

ALPHA = interval_alpha(0.05, 3, 1)  # no generation tasks: one signal


def _run(tmp: Path, **study: Any) -> Path:
    """F16 wrong (a wrong letter) on every 3rd item; Q8_0 unparsed on exactly those (same
    correctness, more unparsed); Q4_K_M also wrong on every 4th."""
    parsed = parse_study(fake_study_dict(**study))
    samples = {f"{s.task}|{s.item}": s.inputs for s in plan_samples(parsed)}
    order = sorted(samples)

    def factory(variant: Any, spec: Any, study: Any) -> FakeBackend:
        def reply(request: Any) -> str:
            inputs = samples.get(request.key)
            if inputs is None:
                return "ready"
            i = order.index(request.key)
            wrong = next(c for c in "ABCD" if c != inputs["gold"])
            if i % 3 == 0:
                return "not sure" if variant.level == "Q8_0" else f"The answer is {wrong}"
            if variant.level == "Q4_K_M" and i % 4 == 0:
                return f"The answer is {wrong}"
            return f"The answer is {inputs['gold']}"

        return FakeBackend(reply)

    run_study(parsed, RunOptions(tmp / "run", tmp / "cache"), factory)
    return tmp / "run"


@pytest.fixture(scope="module")
def fixed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("fixed"))


def test_certified_blocks_match_hand_computed_intervals(fixed_run: Path) -> None:
    a = analyze(RunLog.load(fixed_run))
    blocks = {s.variant: s.certified for s in a.variants}
    assert blocks["m@F16"] is None  # the baseline has none
    q8, q4 = blocks["m@Q8_0"], blocks["m@Q4_K_M"]
    assert q8 is not None and q4 is not None
    n = 18  # 12 MMLU + 6 ARC items, all paired
    # Q4_K_M: lost on every 4th item not already wrong (i % 4 == 0, i % 3 != 0: 0..17 -> 4, 8, 16)
    counts = PairedCounts(both=n - 6 - 3, gained=0, lost=3, neither=6)
    want = interval_of_counts(counts, ALPHA, "tango")
    assert q4.bench is not None and q4.bench.method == "tango" and q4.bench.n == n
    assert q4.bench.alpha == pytest.approx(0.1 / 3)
    assert (q4.bench.change, q4.bench.low, q4.bench.high) == pytest.approx(
        (want.change, want.low, want.high)
    )
    assert q4.flips is not None and (q4.flips.lost.count, q4.flips.gained.count) == (3, 0)
    assert q4.same_answer is not None and q4.same_answer.count == n - 3  # wrong twice the same
    # the fixed sequence: Q4_K_M's certified bound is the worse of its own lower end and Q8_0's
    assert q8.bench is not None and q8.bench_tiers is not None and q4.bench_tiers is not None
    alone = certify.tier_range(
        certify.Interval(q4.bench.change, q4.bench.low, q4.bench.high), TIER_BOUNDS_BENCH
    )
    assert q4.bench_tiers.certified == worse(alone.certified, q8.bench_tiers.certified)
    assert q4.bench.certified_low == min(q4.bench.low, q8.bench.low)  # what the guarantee says
    assert q4.design == "fixed" and q4.items_used == n and q4.items_fixed is None
    assert "fixed sequence down the ladder" in q4.family_rule and "0.03333" in q4.family_rule


def test_a_significant_rise_in_unparsed_replies_holds_out_of_negligible(fixed_run: Path) -> None:
    a = analyze(RunLog.load(fixed_run))
    q8 = a.summary("m@Q8_0")
    assert q8 is not None and q8.certified is not None
    c = q8.certified
    # same correctness as the baseline everywhere: the change is exactly 0, published tier
    # negligible; but 6 of 18 replies went unparsed (McNemar exact p = 2 / 2^6)
    assert c.bench is not None and c.bench.change == 0.0 and q8.tier == "negligible"
    assert c.unparsed is not None and c.unparsed.significant
    assert c.unparsed.p_value == pytest.approx(2 / 2**6)
    assert c.bench_tiers is not None and c.bench_tiers.point == "negligible"
    assert c.point == "acceptable" and c.best == "acceptable"
    assert c.note.startswith("held out of negligible: unparsed replies rose from 0/18 to 6/18")


def _items(correct: list[bool]) -> dict[str, Item]:
    return {f"t|{i:05d}": Item(c, True, "A" if c else "B", "t|") for i, c in enumerate(correct)}


def test_the_fixed_sequence_caps_a_variant_by_the_levels_above_it() -> None:
    base = _items([True] * 2000)
    upper = dict(list(_items([True] * 18 + [False] * 2).items())[:20])  # 20 paired, 2 lost
    lower = _items([True] * 2000)  # 2,000 paired items, nothing lost
    alone = interval_of_counts(PairedCounts(2000, 0, 0, 0), ALPHA, "tango")
    assert (
        certify.tier_range(
            certify.Interval(alone.change, alone.low, alone.high), TIER_BOUNDS_BENCH
        ).certified
        == "negligible"
    )
    got = fixed_bench(base, [upper, lower], ALPHA)
    assert got[0].tiers.certified == "unacceptable"
    assert got[1].tiers.certified == "unacceptable"  # capped by the level above
    assert got[1].tiers.best == "negligible" and got[1].interval.low == alone.low


def test_adaptive_design_reports_what_the_stopping_rule_saw(tmp_path: Path) -> None:
    sampling = {"mode": "adaptive", "min_items": 6, "max_items": 12, "round": 3}
    run = _run(tmp_path, sampling=sampling)
    log = RunLog.load(run)
    a = analyze(log)
    c = a.summary("m@Q4_K_M").certified  # type: ignore[union-attr]
    assert c is not None and c.design == "adaptive" and c.bench is not None
    items = mc_items(log)
    # the order the pipeline ran (all 18 planned items), as recorded in manifest.json
    order = log.manifest["round_order"]
    planned = round_plan(log.study, plan_samples(log.study)).order
    assert order == [f"{s.task}|{s.item}" for s in planned] and len(order) == 18
    base = prefix(items["m@F16"], order)
    seqs = [prefix(items[f"m@{lv}"], order) for lv in ("Q8_0", "Q4_K_M")]
    stops = adaptive_stops(base, seqs, log.study.sampling, TIER_BOUNDS_BENCH, ALPHA, len(order))
    want = paired_change_sequence(base, seqs[1], ALPHA, 12)
    assert c.bench.method == "betting-cs"
    assert (c.bench.low, c.bench.high) == pytest.approx((want.low, want.high))
    assert c.bench_tiers is not None
    assert c.bench_tiers.certified == tier_name(stops.certified[1])
    assert c.bench_tiers.best == tier_name(stops.best[1])
    # the pipeline stopped at max_items at the latest (12 of the 18 planned)
    assert c.items_fixed == 12 and c.items_used == len(items["m@Q4_K_M"]) <= 12


def _score_z(gained: int, lost: int, n: int, d: float) -> float:
    """Tango's statistic with the constrained MLE found numerically (not the closed form)."""

    def nll(q: float) -> float:
        p_gain, rest = q + d, 1 - 2 * q - d
        return -(gained * np.log(p_gain) + lost * np.log(q) + (n - gained - lost) * np.log(rest))

    lo, hi = max(0.0, -d) + 1e-12, (1 - d) / 2 - 1e-12
    q = float(optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded").x)
    return float((gained - lost - n * d) / np.sqrt(n * (2 * q + d * (1 - d))))


@pytest.mark.parametrize(("gained", "lost", "n"), [(6, 16, 161), (0, 3, 18), (5, 105, 1000)])
def test_tango_bounds_invert_the_score_test(gained: int, lost: int, n: int) -> None:
    low, high = tango_bounds(np.asarray([gained]), np.asarray([lost]), np.asarray([n]), 0.05)
    z = float(sps.norm.ppf(0.975))
    assert _score_z(gained, lost, n, float(low[0])) == pytest.approx(z, abs=1e-3)
    assert _score_z(gained, lost, n, float(high[0])) == pytest.approx(-z, abs=1e-3)


def test_worst_case_over_certification_is_at_most_five_percent() -> None:
    rng = np.random.default_rng(3)
    levels = np.asarray([b for _, b in TIER_BOUNDS_BENCH]) - sim.JUST_BELOW_PP
    r = 3000
    worst = sim.Ladders(np.full(r, 0.7), np.tile(levels, (r, 1)), np.full((r, 3), 0.01))
    got = sim.fixed_verdicts(worst, 1000, ALPHA, rng)  # the analysis's method (tango)
    rate = sim.rate_of(got.over_certified().any(axis=1))
    assert rate.rate <= 0.05, rate
