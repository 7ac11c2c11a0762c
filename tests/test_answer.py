"""The answer across models: paired cross-model intervals from the log (against counts taken
from the fake script, and by simulation), the pick per memory budget with its runner-up and
comparisons, admission across models and the beaten rule, ``recommend`` and ``run``'s first
lines, and the 80-column table."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from quantmatrix.analysis.build import analyze
from quantmatrix.analysis.cross_model import CROSS_ALPHA, cross_model_pairs
from quantmatrix.analysis.cross_model_model import CrossModelPair
from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.stats.paired import PairedCounts, interval_of_counts, tango_bounds
from quantmatrix.cli import app
from quantmatrix.decision.build import decide
from quantmatrix.decision.cross import CrossIndex, verdict
from quantmatrix.decision.matrix import fits
from quantmatrix.decision.model import Decision, Policy
from quantmatrix.decision.recommend import recommend
from quantmatrix.report.summary import answer_lines, compact_table, terminal_summary
from quantmatrix.runlog import RunLog
from quantmatrix.tasks.plan import plan_samples
from tests import helpers
from tests.conftest import fake_study_dict
from tests.multi_model import MEMORY_GB, MODELS, correct, study


@pytest.fixture(scope="module")
def analysis(three_models: Path) -> Analysis:
    return analyze(RunLog.load(three_models))


@pytest.fixture(scope="module")
def decision(analysis: Analysis) -> Decision:
    return decide(analysis, Policy())


def test_every_cross_model_pair_is_tango_on_the_scripted_counts(analysis: Analysis) -> None:
    keys = [f"{s.task}|{s.item}" for s in plan_samples(study()) if s.kind == "multiple_choice"]
    ids = [[f"{m['name']}@{lv}" for lv in m["levels"]] for m in MODELS]
    pairs = {(p.a, p.b): p for p in analysis.cross_model}
    # every variant against every variant of each later model, none within a model
    assert len(pairs) == 4 * 3 + 4 * 2 + 3 * 2
    assert all(p.a.split("@")[0] != p.b.split("@")[0] for p in pairs.values())
    for a, b in [(ids[0][0], ids[1][0]), (ids[0][2], ids[1][1]), (ids[1][2], ids[2][1])]:
        got = pairs[(a, b)]
        right_a, right_b = [correct(a, k) for k in keys], [correct(b, k) for k in keys]
        want = interval_of_counts(PairedCounts.of(right_b, right_a), CROSS_ALPHA, "tango")
        assert got.n == len(keys) == 180 and got.method == "tango"
        assert got.a_only == sum(x and not y for x, y in zip(right_a, right_b, strict=True))
        assert got.b_only == sum(y and not x for x, y in zip(right_a, right_b, strict=True))
        assert (got.change, got.low, got.high) == pytest.approx((want.change, want.low, want.high))
        assert got.change == pytest.approx(100 * (got.a_only - got.b_only) / got.n)


def test_tango_covers_a_cross_model_difference_at_its_level_by_simulation() -> None:
    """Two models sharing item difficulty (as in tests/multi_model.py): a right when u < 0.55,
    b when u < 0.42, each flipped with probability 0.05; true difference 0.545 - 0.428."""
    rng = np.random.default_rng(7)
    runs, n = 4000, 90
    u = rng.random((runs, n))
    a = (u < 0.55) ^ (rng.random((runs, n)) < 0.05)
    b = (u < 0.42) ^ (rng.random((runs, n)) < 0.05)
    truth = (0.55 * 0.95 + 0.45 * 0.05) - (0.42 * 0.95 + 0.58 * 0.05)
    gained, lost = (a & ~b).sum(axis=1), (~a & b).sum(axis=1)
    low, high = tango_bounds(gained, lost, np.full(runs, n), CROSS_ALPHA)
    coverage = float(np.mean((low <= truth) & (truth <= high)))
    # 95% nominal (measured 95.0%); the binomial spread of 4000 runs is +-0.7pp
    assert 0.935 <= coverage <= 0.965, coverage
    # each side near its 2.5% (measured 2.9% from below, 2.1% from above)
    assert float(np.mean(truth < low)) < 0.04 and float(np.mean(truth > high)) < 0.04


def test_a_one_model_analysis_keeps_its_shape() -> None:
    dumped = helpers.ladder().json_dict()
    assert "cross_model" not in dumped
    assert Analysis.model_validate(dumped).cross_model == ()


def test_the_answer_per_budget(analysis: Analysis, decision: Decision) -> None:
    rows = decision.rows()
    labels = [b.label for b in decision.budgets]
    assert labels == ["1 GB", "2 GB", "4 GB", "any size (all fit in 1.9 GB)"]
    index = CrossIndex(analysis.cross_model)
    for b in decision.budgets:
        assert b.pick is not None
        pick = rows[b.pick]
        assert fits(pick, b.limit_gb)
        # the pick is never certified less accurate than a recommended variant that fits
        for c in b.comparisons:
            assert c.pick == b.pick and c.other.split("@")[0] != pick.model
            assert fits(rows[c.other], b.limit_gb)
            assert c.verdict == verdict(c.low_pp, c.high_pp)
            assert not (c.other_recommended and c.verdict == "worse")
        assert {c.other.split("@")[0] for c in b.comparisons} == {
            m["name"] for m in MODELS if m["name"] != pick.model
        }
        if b.pick in b.admitted:  # admitted: certified better than every safe variant that fits
            safe = [r for r in rows.values() if fits(r, b.limit_gb) and r.safe_on("certified")]
            assert safe and all(index.better(b.pick, s.variant) for s in safe)
    one, two = decision.budgets[0], decision.budgets[1]
    # 1 GB: no level of the 1.5B or 0.5B below its baseline is certified safe at 180 items,
    # but the 1.5B at Q3_K_S is certified more accurate than the 135M's safe levels
    assert one.pick == "qwen-1.5b@Q3_K_S" and one.pick in one.admitted
    assert MEMORY_GB[one.pick] <= 1.0
    assert two.pick == "qwen-1.5b@Q8_0" and two.admitted == ()
    vs_small = next(c for c in two.comparisons if c.other.startswith("qwen-0.5b"))
    assert vs_small.other == "qwen-0.5b@F16" and vs_small.verdict == "better"


def _pair(a: str, b: str, low: float, high: float) -> CrossModelPair:
    return CrossModelPair(a=a, b=b, n=200, a_only=0, b_only=0, change=(low + high) / 2,
                          low=low, high=high, alpha=0.05, method="tango")  # fmt: skip


def _two_models(pair: CrossModelPair | None) -> Analysis:
    """big: F16 (6.5 GB) and Q4_K_M (1.5 GB, certified unacceptable vs F16); small: Q8_0
    (1.0 GB, its baseline)."""
    big = helpers.variant("big", "F16", 0.70, baseline=True, peak=6_500_000_000)
    low = helpers.certified(helpers.variant("big", "Q4_K_M", 0.60, peak=1_500_000_000), -16.0, -4.0)
    small = helpers.variant("small", "Q8_0", 0.40, baseline=True, peak=1_000_000_000)
    return helpers.analysis([big, low, small], cross_model=() if pair is None else (pair,))


def test_a_variant_certified_better_than_every_safe_one_is_admitted_across_models() -> None:
    better = decide(_two_models(_pair("big@Q4_K_M", "small@Q8_0", 12.0, 28.0)), Policy())
    on2 = better.budgets[1]
    assert on2.label == "2 GB" and on2.pick == "big@Q4_K_M" and on2.admitted == ("big@Q4_K_M",)
    assert on2.runner_up == "small@Q8_0"
    (c,) = on2.comparisons
    assert (c.other, c.verdict, c.change_pp) == ("small@Q8_0", "better", 20.0)
    assert "recommended across models" in "\n".join(answer_lines(better))
    # the matrix and the executive summary read the same rule
    assert {e.label: e for e in better.matrix}["2 GB"].recommended == ("big@Q4_K_M", "small@Q8_0")
    assert better.answer[0].startswith("On 2 GB to 6 GB, run big@Q4_K_M")
    # not certified better: the tier rule stands, and the comparison says it is not decided
    open_ = decide(_two_models(_pair("small@Q8_0", "big@Q4_K_M", -30.0, 1.0)), Policy())
    on2 = open_.budgets[1]
    assert on2.pick == "small@Q8_0" and on2.admitted == ()
    (c,) = on2.comparisons
    assert (c.other, c.verdict, c.other_recommended) == ("big@Q4_K_M", "not decided", False)
    assert (c.change_pp, c.low_pp, c.high_pp) == (-14.5, -30.0, 1.0)
    # no cross-model pairs (an analysis from before them): the rule as before, no comparisons
    before = decide(_two_models(None), Policy())
    assert before.budgets[1].pick == "small@Q8_0" and before.budgets[1].comparisons == ()


def test_a_variant_certified_less_accurate_than_another_model_is_not_picked() -> None:
    """small@Q8_0 ranks first on its worst case (a baseline: 0.66 exactly), big@F16 on its
    (0.70 - 5 = 0.65) second; the paired interval says big@F16 is better, so it is picked."""
    big = helpers.variant("big", "F16", 0.70, baseline=True, peak=1_800_000_000)
    q8 = helpers.certified(helpers.variant("big", "Q8_0", 0.70, peak=1_000_000_000), -2.0, 2.0)
    small = helpers.variant("small", "Q8_0", 0.66, baseline=True, peak=900_000_000)
    a = helpers.analysis([big, q8, small])
    plain = decide(a, Policy())
    assert plain.budgets[1].pick == "big@F16"  # worst case 0.70 vs 0.66: the rule as before
    pairs = (_pair("big@Q8_0", "small@Q8_0", 0.5, 8.0), _pair("big@F16", "small@Q8_0", -1, 9))
    on1 = decide(a.model_copy(update={"cross_model": pairs}), Policy()).budgets[0]
    # on 1 GB big@Q8_0 (worst case 0.68) and small@Q8_0 (0.66) fit; big@Q8_0 is certified
    # better, so small@Q8_0 is out of the tie and after it
    assert on1.pick == "big@Q8_0" and on1.runner_up == "small@Q8_0" and on1.tie == ()
    small_first = helpers.variant("small", "Q8_0", 0.69, baseline=True, peak=900_000_000)
    b = helpers.analysis([big, q8, small_first], cross_model=pairs)
    on1 = decide(b, Policy()).budgets[0]
    assert on1.pick == "big@Q8_0", "a worse-ranked but certified better variant is picked"


def test_recommend_answers_across_models(three_models: Path) -> None:
    out = CliRunner().invoke(app, ["recommend", str(three_models), "--memory", "1GB"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("run qwen-1.5b@Q3_K_S: accuracy change vs Q8_0 >=")
    assert lines[1].strip().startswith("recommended across models")
    across = [ln.strip() for ln in lines if "across models: qwen-1.5b@Q3_K_S (0.95 GB) vs" in ln]
    assert {ln.split(" vs ")[1].split(" ")[0] for ln in across} == {
        "qwen-0.5b@Q8_0",
        "smollm2-135m@Q8_0",
    }
    assert all("certified better" in ln for ln in across)
    # the same answer from the run's analysis.json (its cross-model pairs read back)
    again = CliRunner().invoke(
        app, ["recommend", str(three_models / "analysis.json"), "--memory", "1GB"]
    )
    assert again.exit_code == 0 and again.output == out.output
    rec = recommend(analyze(RunLog.load(three_models)), 2.0, model="qwen-0.5b")
    assert rec.best is not None and rec.best.variant == "qwen-0.5b@F16"
    assert rec.across == []  # one model asked: nothing to compare


def _render(parts: list[Any], width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    for part in parts:
        console.print(part)
    return console.export_text().splitlines()


def test_the_terminal_summary_opens_with_the_answer_and_fits_80_columns(
    decision: Decision,
) -> None:
    lines = _render(terminal_summary(decision))
    assert lines[0] == "The answer" and lines[1].startswith("1 GB: run qwen-1.5b@Q3_K_S: ")
    assert all(len(line) <= 80 for line in lines)
    table = [ln for ln in lines if ln.startswith(("qwen", "smollm"))]
    for v in decision.variants:  # every name whole, at the start of its row
        assert sum(ln.startswith(v.variant + " ") for ln in table) == 1, v.variant


def test_long_names_stay_whole_and_the_table_drops_columns() -> None:
    long = "qwen2.5-coder-1.5b-instruct-q4km-gguf"
    a = helpers.analysis(
        [
            helpers.variant(long, "F16", 0.6, baseline=True, peak=3_000_000_000),
            helpers.variant(long, "Q4_K_M", 0.58, peak=1_100_000_000),
        ]
    )
    d = decide(a, Policy())
    wide = _render([compact_table(d, 200)], 200)
    narrow = _render([compact_table(d, 80)])
    assert "best case" in wide[0] and "best case" not in narrow[0]
    assert all(len(line) <= 80 for line in narrow)
    assert sum(line.startswith(f"{long}@Q4_K_M ") for line in narrow) == 1
    assert sum(line.startswith(f"{long}@F16 ") for line in narrow) == 1


def test_run_prints_the_answer_first(tmp_path: Path) -> None:
    models = [
        {"name": name, "source": "fake", "backend": "fake", "levels": ["F16", "Q4_K_M"]}
        for name in ("qwen-1.5b", "qwen-0.5b")
    ]
    data = fake_study_dict(models=models, timing={"enabled": False})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "r"), "--quiet"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "The answer" and lines[1].startswith("1 GB: ")
    # the same sentences as the report's opening, budget by budget (wrapped at 80 columns)
    report = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    opening = report.split("## The answer\n\n")[1].split("\n\n")[0].replace("**", "")
    printed = "\n".join(lines[1 : lines.index("")])
    assert " ".join(printed.split()) == " ".join(opening.replace("\n- ", "\n").lstrip("- ").split())
    for name in ("qwen-1.5b@F16", "qwen-1.5b@Q4_K_M", "qwen-0.5b@F16", "qwen-0.5b@Q4_K_M"):
        assert any(line.startswith(name + " ") for line in lines), name


def test_adaptive_runs_pair_the_shared_prefix_with_the_betting_sequence(tmp_path: Path) -> None:
    from quantmatrix.analysis.certified_signals import mc_items, prefix
    from quantmatrix.analysis.stats.sequential import paired_change_sequence
    from tests.multi_model import run_three_models

    sampling = {"mode": "adaptive", "min_items": 40, "max_items": 240, "round": 40}
    run = run_three_models(tmp_path / "run", tmp_path / "cache", mmlu=160, arc=80,
                           sampling=sampling, timing={"enabled": False})  # fmt: skip
    log = RunLog.load(run)
    order = [str(k) for k in log.manifest["round_order"]]
    items = mc_items(log)
    pairs = cross_model_pairs(log)
    assert len(pairs) == 26 and {p.method for p in pairs} == {"betting-cs"}
    lengths = {len(prefix(v, order)) for v in items.values()}
    assert len(lengths) > 1, "some variants stopped early: the prefixes differ"
    for p in pairs:
        a, b = prefix(items[p.a], order), prefix(items[p.b], order)
        n = min(len(a), len(b))
        want = paired_change_sequence(b[:n], a[:n], CROSS_ALPHA, 240)
        assert p.n == n and (p.change, p.low, p.high) == pytest.approx(
            (want.change, want.low, want.high)
        )


def test_the_answer_plots_draw_what_the_decision_says(decision: Decision) -> None:
    from matplotlib.colors import to_hex

    from quantmatrix.report.plots_answer import plot_flips, plot_frontier, plot_tier_ladder

    frontier = plot_frontier(decision).axes[0]
    labels = frontier.get_legend_handles_labels()[1]
    assert labels[:3] == [m["name"] for m in MODELS] and labels[3].startswith("frontier")
    faces = [to_hex(c.get_edgecolor()[0]) for c in frontier.collections if c.get_label() in labels]
    assert len(set(faces)) == 3  # one colour per model
    ladder = [ax for ax in plot_tier_ladder(decision).axes if ax.get_visible() and ax.axison]
    assert [ax.get_title() for ax in ladder] == [m["name"] for m in MODELS]
    for ax in ladder:  # the tier bounds drawn on every model's panel
        flat = {
            round(line.get_ydata()[0], 6) for line in ax.lines if len(set(line.get_ydata())) == 1
        }
        assert {-3.0, -5.0, -10.0, 0.0} <= flat
    rows = decision.rows()
    flips = [ax for ax in plot_flips(decision).axes if ax.axison]
    for ax, model in zip(flips, [m["name"] for m in MODELS], strict=True):
        below = [r for r in rows.values() if r.model == model and not r.is_baseline]
        heights = [round(p.get_height()) for p in ax.patches]
        assert heights == [r.flips_gained for r in below] + [-(r.flips_lost or 0) for r in below]


def test_recommend_names_an_undecided_variant_once_when_it_is_admitted_across_models() -> None:
    """big@Q4_K_M is held back on its tier and admitted across models: one undecided line."""
    rec = recommend(_two_models(_pair("big@Q4_K_M", "small@Q8_0", 12.0, 28.0)), 2.0)
    assert rec.admitted == ["big@Q4_K_M"]
    named = [line.split(" ", 1)[0] for line in rec.undecided]
    assert named.count("big@Q4_K_M") == 1
