"""The decision on certified tiers: recommend's basis, the max-tier guarantee, ties broken by
the objective, the undecided projection, and the report opening with the answer."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.variant_model import VariantSummary
from quantmatrix.cli_decide import register
from quantmatrix.decide import TIERS
from quantmatrix.decision import DecisionError
from quantmatrix.decision.build import decide
from quantmatrix.decision.guarantee import items_to_decide
from quantmatrix.decision.matrix import variant_rows
from quantmatrix.decision.model import Policy
from quantmatrix.decision.recommend import recommend
from quantmatrix.report.decision_md import render_answer_md, render_decision_md
from quantmatrix.report.html import render_html
from quantmatrix.report.render import render_markdown
from tests.helpers import analysis, certified, empty_statistics, variant

GB9 = 10**9


def ladder() -> Analysis:
    """F16 0.70; Q8_0 and Q4_K_M cannot be told from F16 (intervals contain 0); Q3_K_S looks
    negligible on its point change but its interval reaches -8pp; Q2_K is clearly worse."""
    return analysis(
        [
            variant("m", "F16", 0.70, baseline=True, tps=10, peak=6 * GB9),
            certified(variant("m", "Q8_0", 0.70, tps=18, peak=3 * GB9), -2.0, 1.5, change=0.0),
            certified(variant("m", "Q4_K_M", 0.69, tps=30, peak=2 * GB9), -2.8, 0.9, change=-1.0),
            certified(
                variant("m", "Q3_K_S", 0.69, tps=35, peak=int(1.8 * GB9)), -8.0, 6.0, change=-1.0
            ),
            certified(variant("m", "Q2_K", 0.55, tps=40, peak=int(1.5 * GB9)), -19.0, -11.0),
        ]
    )


def test_basis_point_and_certified_give_different_answers() -> None:
    a = ladder()
    point = recommend(a, 1.9, basis="point")
    assert point.best is not None and point.best.variant == "m@Q3_K_S"  # negligible at -1pp
    cert = recommend(a, 1.9)
    assert cert.best is None  # its certified tier is concerning (-8pp): nothing qualifies
    assert "2 certified worse than acceptable, 3 need more than 1.9 GB" in cert.reason
    loose = recommend(a, 1.9, max_tier="concerning")
    assert loose.best is not None and loose.best.variant == "m@Q3_K_S"
    assert loose.best.why.startswith("accuracy change vs F16 >= -8.0pp (95%, 100 paired items)")
    assert "1.80 GB measured, $0.2857/1M; certified concerning, at best negligible" in (
        loose.best.why
    )


def test_recommend_never_returns_a_certified_tier_worse_than_max_tier() -> None:
    a = ladder()
    rows = {r.variant: r for r in variant_rows(a)}
    objectives = ("quality", "cost", "speed", "memory", "value")
    for max_tier, gb, objective in itertools.product(TIERS, (1.6, 1.9, 2.5, 8.0), objectives):
        rec = recommend(a, gb, max_tier=max_tier, objective=objective)
        for pick in [rec.best, *rec.runners_up]:
            if pick is None:
                continue
            got = rows[pick.variant].certified_tier
            assert got is not None and TIERS.index(got) <= TIERS.index(max_tier)


def test_a_tie_is_called_and_broken_by_the_objective() -> None:
    a = ladder()
    rec = recommend(a, 8, max_tier="unacceptable", objective="cost")
    # F16, Q8_0 and Q4_K_M cannot be separated (overlapping ranges); Q3_K_S's range overlaps
    # too; Q2_K is separated (its interval ends at -11pp): the cheapest of the tie wins
    assert rec.tie == ["m@Q3_K_S", "m@Q4_K_M", "m@Q8_0", "m@F16"]
    assert rec.best is not None and rec.best.variant == "m@Q3_K_S"
    assert rec.tie_note.startswith("tie: the data cannot separate m@Q3_K_S, m@Q4_K_M")
    assert rec.tie_note.endswith("broken by cost")
    # on the point basis the cheapest qualifying variant wins outright, with no tie
    point = recommend(a, 8, max_tier="unacceptable", objective="cost", basis="point")
    assert point.best is not None and point.best.variant == "m@Q2_K" and point.tie == []
    quality = recommend(a, 8)
    assert quality.best is not None and quality.best.variant == "m@F16"
    assert "broken by the best certified accuracy, then cost" in quality.tie_note
    memory = recommend(a, 8, objective="memory")
    assert memory.best is not None and memory.best.variant == "m@Q4_K_M"  # smallest safe
    assert recommend(a, 8, objective="value").best.variant == "m@Q4_K_M"  # type: ignore[union-attr]


def test_undecided_variants_get_a_projection_of_the_items_to_decide() -> None:
    a = ladder()
    rows = {r.variant: r for r in variant_rows(a)}
    # Q4_K_M: change -1.0, interval [-2.8, +0.9] at n = 100 is decided (negligible)
    assert rows["m@Q4_K_M"].decided and items_to_decide(rows["m@Q4_K_M"]) == 0
    # Q3_K_S: [-8, +6] around -1: bounds -3 and -5 inside; the lower half-width 7 must fall
    # to 2 (the distance to -3): n (7/2)^2 = 1225, so 1125 more
    assert items_to_decide(rows["m@Q3_K_S"]) == 1125
    rec = recommend(a, 1.9, max_tier="concerning")
    assert rec.undecided[0].startswith("m@Q3_K_S undecided: certified concerning, at best")
    assert "about 1125 more paired items would decide it" in rec.undecided[0]


def test_variants_held_back_only_by_their_certified_tier_say_what_would_let_them_in() -> None:
    a = ladder()
    # on 1.9 GB only Q3_K_S fits; certified concerning (worse than the default max tier),
    # best case negligible: nothing is recommended, and the answer says what would decide it
    rec = recommend(a, 1.9)
    assert rec.best is None
    assert len(rec.undecided) == 1
    assert rec.undecided[0].startswith("m@Q3_K_S undecided: certified concerning")
    assert "about 1125 more paired items" in rec.undecided[0]
    # with room for all, the pick comes first and Q3_K_S is still listed as held back
    wide = recommend(a, 8)
    assert wide.best is not None and wide.best.variant != "m@Q3_K_S"
    assert any(line.startswith("m@Q3_K_S undecided") for line in wide.undecided)
    # on the point basis Q3_K_S is the pick itself (its undecided line is the pick's own)
    point = recommend(a, 1.9, basis="point")
    assert point.best is not None and point.best.variant == "m@Q3_K_S"
    assert len(point.undecided) == 1


def test_model_option_and_bad_input() -> None:
    a = ladder()
    assert recommend(a, 8, model="m").best is not None
    with pytest.raises(DecisionError, match="unknown model 'x'; this run has: m"):
        recommend(a, 8, model="x")
    with pytest.raises(DecisionError, match="unknown basis"):
        recommend(a, 8, basis="vibes")  # type: ignore[arg-type]


def test_matrix_and_summary_use_the_certified_rule() -> None:
    a = ladder()
    d = decide(a, Policy(memory_tiers_gb=(1.9, 2.5, 8)))
    entries = {e.label: e for e in d.matrix}
    assert entries["1.9 GB"].recommended == ()  # Q3_K_S fits, but is certified concerning
    assert entries["2.5 GB"].recommended == ("m@Q4_K_M",)
    point = decide(a, Policy(memory_tiers_gb=(1.9, 2.5, 8), basis="point"))
    assert {e.label: e for e in point.matrix}["1.9 GB"].recommended == ("m@Q3_K_S",)
    assert d.answer[0].startswith("On 1.9 GB, nothing is recommended")
    assert d.answer[1].startswith("On 2.5 GB, run m@Q4_K_M: accuracy change vs F16 >= -2.8pp")
    assert d.summary[: len(d.answer)] == d.answer


def test_the_report_opens_with_the_answer(tmp_path: Path) -> None:
    none: dict[str, dict[str, int]] = {"paired": {}, "unpaired": {}}
    stats = empty_statistics()
    summary = stats.summary.model_copy(update={"accuracy_equivalent": none})
    a = ladder().model_copy(update={"statistics": stats.model_copy(update={"summary": summary})})
    d = decide(a, Policy())
    md = render_markdown(a, render_decision_md(d, {}), render_answer_md(d))
    lines = md.splitlines()
    assert lines[0].startswith("# quantmatrix report") and lines[2] == "## The answer"
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    answer = next(i for i, line in enumerate(lines) if "run m@" in line)
    assert answer < first_table and "accuracy change vs F16 >=" in lines[answer]
    assert "Tier (point / certified / best)" in md and "## Certified tiers" in md
    page = render_html(d, {})
    assert page.index("The answer") < page.index("<table>")
    assert "accuracy change vs F16 &gt;=" in page.split("<table>")[0]


def test_recommend_cli_prints_the_guarantee_and_refuses_bad_options(tmp_path: Path) -> None:
    path = tmp_path / "analysis.json"
    path.write_text('{"decision": {}, ' + ladder().model_dump_json()[1:], encoding="utf-8")
    app = typer.Typer()
    register(app)
    cli = CliRunner()
    ok = cli.invoke(app, ["recommend", str(path), "--memory", "2.5GB"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("run m@Q4_K_M: accuracy change vs F16 >= -2.8pp (95%, 100")
    point = cli.invoke(app, ["recommend", str(path), "--memory", "1.9", "--basis", "point"])
    assert point.exit_code == 0 and point.output.startswith("run m@Q3_K_S: most accurate")
    for bad in (["--basis", "pt"], ["--objective", "vibes"], ["--model", "zz"]):
        got = cli.invoke(app, ["recommend", str(path), *bad])
        assert got.exit_code == 2 and got.output.startswith("error: ")
        assert len(got.output.strip().splitlines()) == 1


def test_the_answer_shows_the_adaptive_saving() -> None:
    def adaptive(s: VariantSummary, used: int) -> VariantSummary:
        assert s.certified is not None
        block = s.certified.model_copy(
            update={"design": "adaptive", "items_used": used, "items_fixed": 1000}
        )
        return s.model_copy(update={"certified": block})

    a = ladder()
    variants = [
        adaptive(s, 300) if s.level == "Q8_0" else adaptive(s, 1000) if s.level == "Q2_K" else s
        for s in a.variants
    ]
    d = decide(a.model_copy(update={"variants": tuple(variants)}), Policy())
    answer = render_answer_md(d)
    assert (
        "Adaptive sampling: items used per variant: m@Q8_0 300 of 1000, m@Q2_K 1000 of 1000; "
        "1300 of 2000 in all (35% fewer than the fixed design)." in answer
    )
    assert "Adaptive sampling" not in render_answer_md(decide(a, Policy()))
