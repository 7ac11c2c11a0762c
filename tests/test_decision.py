"""The decision layer on synthetic analyses with known answers: cost, memory, matrix, answers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from quantmatrix.analysis.model import Analysis
from quantmatrix.cli_decide import parse_memory_gb, register
from quantmatrix.decide import tier
from quantmatrix.decision import DecisionError
from quantmatrix.decision.build import decide
from quantmatrix.decision.compare import compare
from quantmatrix.decision.cost import usd_per_million
from quantmatrix.decision.memory import estimate_bytes, memory_row
from quantmatrix.decision.model import Basis, Decision, MatrixEntry, Policy
from quantmatrix.decision.recommend import Recommendation, recommend, validate
from tests.helpers import (
    RATE,
    analysis,
    empty_statistics,
    equivalence_row,
    ladder,
    timing,
    variant,
)


def build_decision(
    a: Analysis,
    memory_tiers_gb: Sequence[float] | None = None,
    cost_per_hour: float | None = None,
    basis: Basis = "point",
) -> Decision:
    """``decide`` under a policy of these budgets (default: the default ones) and this rate;
    on the point basis by default, as the hand-built analyses here carry no certified blocks
    (tests/test_certified_decision.py tests the certified basis)."""
    tiers = {} if memory_tiers_gb is None else {"memory_tiers_gb": tuple(memory_tiers_gb)}
    return decide(a, Policy(cost_per_hour=cost_per_hour, basis=basis, **tiers))


def picks(rec: Recommendation) -> list[str]:
    """The best variant then the runners-up, in order."""
    assert rec.best is not None, rec.reason
    return [rec.best.variant] + [p.variant for p in rec.runners_up]


def by_label(decision: Decision) -> dict[str, MatrixEntry]:
    return {e.label: e for e in decision.matrix}


def test_cost_per_million_and_savings() -> None:
    assert usd_per_million(10.0, RATE) == pytest.approx(1.0)
    assert usd_per_million(None, RATE) is None and usd_per_million(0.0, RATE) is None
    rows = {r.variant: r for r in build_decision(ladder()).variants}
    assert rows["big@Q4_K_M"].usd_per_m == pytest.approx(1 / 3)
    assert rows["big@Q4_K_M"].cheaper_x == pytest.approx(3.0)
    assert rows["big@Q4_K_M"].savings_pct == pytest.approx(100 * 2 / 3)
    cheap = build_decision(ladder(), cost_per_hour=0.072).variants[0]
    assert cheap.usd_per_m == pytest.approx(2.0)  # the override doubles the price


def test_memory_estimate_vs_measured() -> None:
    assert estimate_bytes(1_000_000_000, "Q8_0") == pytest.approx(1e9 * 8.5 / 8 * 1.1)
    assert estimate_bytes(None, "Q8_0") is None
    rows = {m.variant: m for m in build_decision(ladder()).memory}
    q2 = rows["big@Q2_K"]  # estimate 1.08 GB vs measured 1.9 GB: misleads, measured wins
    assert q2.misleading and q2.basis == "measured" and q2.used_bytes == 1_900_000_000
    assert "too low" in q2.verdict
    assert rows["big@F16"].misleading is False
    small = rows["small@Q8_0"]
    assert small.basis == "estimate" and small.measured_bytes is None
    assert small.used_bytes == pytest.approx(1.16875e9)
    bare = memory_row(variant("x", "Q4_K_M", 0.5, n_params=None))
    assert bare.basis == "unknown" and bare.used_bytes is None


def test_matrix_per_memory_tier() -> None:
    d = build_decision(ladder())
    tiers = by_label(d)
    assert list(tiers) == ["2 GB", "4 GB", "6 GB", "8+ GB"]
    assert tiers["2 GB"].fits == ("big@Q4_K_M", "big@Q2_K", "small@Q8_0", "small@Q4_K_M")
    assert tiers["2 GB"].recommended == ("big@Q4_K_M", "small@Q8_0", "small@Q4_K_M")
    assert "big@Q8_0" in tiers["4 GB"].fits and "big@F16" not in tiers["6 GB"].fits
    assert len(tiers["8+ GB"].fits) == 6 and tiers["8+ GB"].open_ended
    assert d.tier_counts == {
        "negligible": 5,
        "acceptable": 0,
        "concerning": 0,
        "unacceptable": 1,
        "unknown": 0,
    }
    assert [n.variant for n in d.not_recommended] == ["big@Q2_K"]
    assert d.summary[0].startswith("On 2 GB, run big@Q4_K_M: -2.0pp (negligible)")
    assert "3.0x cheaper than F16" in d.summary[0]
    json.dumps(d.json_dict(), allow_nan=False)


def test_empty_tier_and_custom_tiers() -> None:
    d = build_decision(ladder(), memory_tiers_gb=[0.5, 3])
    tiers = by_label(d)
    assert tiers["0.5 GB"].fits == () and tiers["0.5 GB"].recommended == ()
    assert d.summary[0] == ("On 0.5 GB, nothing fits: no variant's memory is within the budget.")
    with pytest.raises(ValueError, match="positive"):
        build_decision(ladder(), memory_tiers_gb=[])


def test_cliff_diminishing_returns_and_task_differential() -> None:
    d = build_decision(ladder())
    cliffs = {c.model: c for c in d.cliffs}
    assert cliffs["big"].last_safe == "Q4_K_M" and cliffs["big"].first_unsafe == "Q2_K"
    assert cliffs["big"].cliff_pp == pytest.approx(13.0)
    assert cliffs["small"].first_unsafe is None and cliffs["small"].last_safe == "Q4_K_M"
    steps = [s for s in d.diminishing_returns if s.model == "big"]
    assert [(s.from_level, s.to) for s in steps] == [
        ("Q2_K", "Q4_K_M"),
        ("Q4_K_M", "Q8_0"),
        ("Q8_0", "F16"),
    ]
    assert steps[0].gain_pp == pytest.approx(13.0)
    assert steps[0].cost_change_pct == pytest.approx(100 * (40 / 30 - 1))
    assert steps[1].diminishing is True
    diff = {t.variant: t for t in d.task_differential}
    assert diff["big@Q4_K_M"].diff_pp == pytest.approx(-4.0)
    assert "small@Q8_0" not in diff


def test_model_without_baseline_and_single_level() -> None:
    orphan = analysis([variant("o", "Q4_K_M", 0.6, peak=10**9), variant("o", "Q2_K", 0.5)])
    d = build_decision(orphan)
    assert d.tier_counts["unknown"] == 2
    assert d.not_recommended[0].reason.startswith("no baseline")
    assert d.cliffs[0].note == "no baseline: tiers not computed"
    rec = recommend(orphan, 4)
    assert rec.best is None and "tier unknown (no baseline)" in rec.reason
    single = build_decision(analysis([variant("s", "F16", 0.4, baseline=True, peak=10**9)]))
    assert single.diminishing_returns == () and single.cliffs[0].first_unsafe is None
    assert single.summary[0].startswith("On 2 GB and above, run s@F16: the baseline")


def test_recommend_objectives_filters_and_empty_reason() -> None:
    a = ladder()
    rec = recommend(a, 4, basis="point")
    assert picks(rec) == ["big@Q8_0", "big@Q4_K_M", "small@Q8_0"]
    assert rec.best is not None and "accuracy 69.5%" in rec.best.why
    assert "3.50 GB measured" in rec.best.why
    assert picks(recommend(a, 4, objective="cost", basis="point"))[0] == "small@Q4_K_M"
    assert (
        picks(recommend(a, 2, min_accuracy=0.52, objective="speed", basis="point"))[0]
        == "big@Q4_K_M"
    )
    loose = recommend(
        a, 2, min_accuracy=0.52, max_tier="unacceptable", objective="speed", basis="point"
    )
    assert picks(loose)[0] == "big@Q2_K"
    none = recommend(a, 1, min_accuracy=0.6, basis="point")
    assert none.best is None and none.runners_up == []
    assert none.reason == (
        "nothing qualifies on 1 GB: of 6 variants, 1 accuracy below 60.0%, 5 need more than 1 GB"
    )
    assert picks(recommend(a, 8, min_accuracy=0.69, basis="point")) == ["big@F16", "big@Q8_0"]
    with pytest.raises(DecisionError, match="unknown objective"):
        recommend(a, 4, objective="vibes")
    with pytest.raises(DecisionError, match="not a proportion"):
        recommend(a, 4, min_accuracy=60)


def test_recommend_ties_and_conservative() -> None:
    a = analysis(
        [
            variant("m", "F16", 0.60, baseline=True, tps=10, peak=10**9),
            variant("m", "Q8_0", 0.60, tps=20, peak=10**9),
            variant("m", "Q6_K", 0.60, tps=20, peak=10**9),
            variant("m", "Q4_K_M", 0.61, tps=30, peak=10**9, half=0.2),
        ]
    )
    assert picks(recommend(a, 2, basis="point"))[0] == "m@Q4_K_M"
    cons = recommend(a, 2, conservative=True, basis="point")
    # equal lower bounds: cheaper first, then the variant name breaks the tie
    assert picks(cons) == ["m@Q6_K", "m@Q8_0", "m@F16"]
    assert cons.best is not None and "lower CI bound" in cons.best.why


def test_generation_delta_worsens_the_tier() -> None:
    a = analysis(
        [
            variant("g", "F16", 0.6, baseline=True, peak=10**9),
            variant("g", "Q4_K_M", 0.6, peak=10**9, gen=-9.0),
            variant("g", "Q2_K", 0.6, peak=10**9, gen=-7.0),
        ]
    )
    rows = {r.variant: r for r in build_decision(a).variants}
    assert rows["g@Q4_K_M"].tier == "concerning" and not rows["g@Q4_K_M"].safe
    # -7% generation is acceptable under the published generation bounds (-3 / -8 / -15)
    assert rows["g@Q2_K"].tier == "acceptable" and rows["g@Q2_K"].safe


def test_validate_with_and_without_statistics() -> None:
    a = ladder()
    v = validate(a, "big@Q4_K_M")
    assert v.tier == "negligible" and v.equivalence == ()  # not computed
    assert v.cost.cheaper_x == pytest.approx(3.0)
    row = equivalence_row(
        "big@Q4_K_M", metric="accuracy", margin_label="3pp", design="paired", equivalent=True
    )
    a = a.model_copy(update={"statistics": empty_statistics((row,))})
    eq = validate(a, "big@Q4_K_M").equivalence
    assert eq[0].equivalent is True and eq[0].margin_label == "3pp"
    with pytest.raises(DecisionError, match="unknown variant 'nope'"):
        validate(a, "nope")


def test_compare_flags_divergence_above_threshold() -> None:
    a, b = ladder(), ladder()
    q8 = b.variants[1]
    faster = q8.model_copy(update={"timing": timing(18 * 1.10, q8.timing.ttft_mean_s)})
    b = b.model_copy(update={"variants": (b.variants[0], faster, b.variants[2])})
    res = compare(a, b, threshold_pct=5.0)
    assert res.shared == ("big@F16", "big@Q8_0", "big@Q4_K_M")
    assert res.only_a == ("big@Q2_K", "small@Q8_0", "small@Q4_K_M") and res.only_b == ()
    assert len(res.flags) == 1 and res.flags[0].startswith("big@Q8_0: decode_tps")
    assert compare(a, b, threshold_pct=20.0).flags == ()


def _fake_run(tmp: Path) -> Path:
    """A real run folder from the fake backend: F16 and Q8_0 always right, Q4_K_M wrong 1 in 3."""
    from quantmatrix.backends.fake import FakeBackend
    from quantmatrix.config import parse_study
    from quantmatrix.pipeline import RunOptions, run_study
    from quantmatrix.tasks.plan import plan_samples
    from tests.conftest import fake_study_dict

    study = parse_study(fake_study_dict())
    golds = {f"{s.task}|{s.item}": s.inputs["gold"] for s in plan_samples(study)}
    order = sorted(golds)

    def factory(variant: Any, spec: Any, study: Any) -> FakeBackend:
        def reply(request: Any) -> str:
            gold = golds.get(request.key)
            if gold is None:
                return "ready"
            wrong = variant.level == "Q4_K_M" and order.index(request.key) % 3 == 0
            return "not sure" if wrong else f"The answer is {gold}"

        return FakeBackend(reply)

    run_study(study, RunOptions(tmp / "run", tmp / "cache"), factory)
    return tmp / "run"


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fake_run(tmp_path_factory.mktemp("fake"))


def test_fake_run_gets_a_decision(fake_run: Path) -> None:
    from quantmatrix.analysis.build import analyze
    from quantmatrix.report.decision_md import render_decision_md
    from quantmatrix.runlog import RunLog

    a = analyze(RunLog.load(fake_run))
    decision = build_decision(a)
    assert decision.cost_per_hour == 0.035 and decision.context_length == 2048
    rows = {r.variant: r for r in decision.variants}
    assert rows["m@Q4_K_M"].tier == "unacceptable"
    assert rows["m@F16"].memory_basis == "measured"
    assert "m@Q4_K_M" in render_decision_md(decision, {})


def test_analysis_json_reads_back(fake_run: Path, tmp_path: Path) -> None:
    from quantmatrix.analysis.build import analyze
    from quantmatrix.analysis.model import AnalysisFileError, read_analysis
    from quantmatrix.report.render import analysis_json, write_report
    from quantmatrix.runlog import RunLog

    run = tmp_path / "run"
    shutil.copytree(fake_run, run)
    write_report(run)
    back = read_analysis(run / "analysis.json")
    assert back == analyze(RunLog.load(run))
    written = (run / "analysis.json").read_text(encoding="utf-8")
    assert analysis_json(back, decide(back, Policy())) == written
    cli = CliRunner()
    app = typer.Typer()
    register(app)
    for cmd in (["recommend", "--memory", "4GB"], ["validate", "--variant", "m@Q4_K_M"]):
        from_file = cli.invoke(app, [cmd[0], str(run / "analysis.json"), *cmd[1:]])
        from_log = cli.invoke(app, [cmd[0], str(run), *cmd[1:]])
        assert from_file.exit_code == 0 and from_file.output == from_log.output
    newer = tmp_path / "newer.json"
    newer.write_text(written.replace('"analysis_version": 2', '"analysis_version": 99'))
    with pytest.raises(AnalysisFileError, match="analysis_version 99"):
        read_analysis(newer)
    bad = cli.invoke(app, ["compare", str(newer), str(run)])
    assert bad.exit_code == 2 and bad.output.startswith("error: ")
    assert len(bad.output.strip().splitlines()) == 1 and "analysis_version 99" in bad.output
    typo = tmp_path / "typo.json"
    typo.write_text(written.replace('"config_hash"', '"config_hsh"'))
    with pytest.raises(AnalysisFileError, match="config_hash: Field required"):
        read_analysis(typo)


def test_cli_commands(fake_run: Path, tmp_path: Path) -> None:
    run = fake_run
    assert parse_memory_gb("4GB") == 4 and parse_memory_gb("512MB") == 0.512
    assert parse_memory_gb("4") == 4 and parse_memory_gb("1.5 gb") == 1.5
    app = typer.Typer()
    register(app)
    cli = CliRunner()
    ok = cli.invoke(app, ["recommend", str(run), "--memory", "4GB"])
    assert ok.exit_code == 0 and "m@F16" in ok.output
    ok = cli.invoke(app, ["validate", str(run), "--variant", "m@Q4_K_M"])
    assert ok.exit_code == 0 and "unacceptable" in ok.output
    ok = cli.invoke(app, ["compare", str(run), str(run)])
    assert ok.exit_code == 0 and "no divergence" in ok.output
    for args in (
        ["recommend", str(tmp_path / "none"), "--memory", "4"],
        ["recommend", str(run), "--memory", "lots"],
        ["validate", str(run), "--variant", "m@Q9"],
    ):
        bad = cli.invoke(app, args)
        assert bad.exit_code == 2 and bad.output.startswith("error: ")


def test_the_tier_rule_reads_as_its_bounds() -> None:
    from quantmatrix.decide import SAFE_TIERS, TIERS, rule_text, safe_text

    assert rule_text() == (
        "benchmark Δ (pp): negligible >= -3, acceptable >= -5, concerning >= -10, else "
        "unacceptable; generation key-average Δ (%): negligible >= -3, acceptable >= -8, "
        "concerning >= -15, else unacceptable"
    )
    assert safe_text() == "negligible or acceptable"
    assert TIERS == ("negligible", "acceptable", "concerning", "unacceptable")
    assert SAFE_TIERS == ("negligible", "acceptable")
    assert [tier(d) for d in (-3.0, -3.01, -5.0, -10.0, -10.01)] == [
        "negligible", "acceptable", "acceptable", "concerning", "unacceptable"
    ]  # fmt: skip
    # generation % under its own bounds (-3 / -8 / -15), the worse of the two signals
    assert [tier(0.0, g) for g in (-3.0, -7.9, -8.0, -8.01, -15.0, -15.01)] == [
        "negligible", "acceptable", "acceptable", "concerning", "concerning", "unacceptable"
    ]  # fmt: skip
    assert tier(None, -6.0) == "acceptable" and tier(-6.0, -1.0) == "concerning"
    assert tier(None, None) is None
