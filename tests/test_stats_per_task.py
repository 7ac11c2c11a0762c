"""Per-task statistics (analysis.stats.per_task, differential) against known answers, by
simulation with a known truth, and on the fake backend through ``analyze()``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from quantmatrix.analysis.stats.differential import change_difference, difference_arrays
from quantmatrix.analysis.stats.inputs import ModelLadder, VariantOutcomes
from quantmatrix.analysis.stats.paired import PairedCounts
from quantmatrix.analysis.stats.per_task import per_task
from quantmatrix.analysis.stats.section import build_statistics
from quantmatrix.backends.base import Backend, GenerationRequest
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.report.stats_md import render_statistics_md


def _variant(level: str, correct: dict[str, bool], gen: dict[str, float]) -> VariantOutcomes:
    metrics = {"key_avg": gen} if gen else {}
    return VariantOutcomes(f"m@{level}", "m", level, correct, metrics, [0.1], [10.0])


def _table(
    task: str, both: int, gained: int, lost: int, neither: int
) -> tuple[dict[str, bool], dict[str, bool]]:
    """Baseline and variant correctness on ``task``'s items for one paired 2x2 table."""
    cells = [(True, True)] * both + [(False, True)] * gained
    cells += [(True, False)] * lost + [(False, False)] * neither
    keys = [f"{task}|{task}/{i:03d}" for i in range(len(cells))]
    return (
        {k: c[0] for k, c in zip(keys, cells, strict=True)},
        {k: c[1] for k, c in zip(keys, cells, strict=True)},
    )


def _ladder(
    tables: dict[str, dict[str, tuple[int, int, int, int]]], gen: bool = False
) -> ModelLadder:
    """level -> task -> (both, gained, lost, neither); the baseline's items are the union."""
    base: dict[str, bool] = {}
    variants = []
    for level, by_task in tables.items():
        var: dict[str, bool] = {}
        for task, cells in by_task.items():
            b, v = _table(task, *cells)
            base.update(b)
            var.update(v)
        scores = {f"summarization|s{i}": 0.8 - 0.1 * (level == "Q2_K") * (i % 2) for i in range(6)}
        variants.append(_variant(level, var, scores if gen else {}))
    base_gen = {f"summarization|s{i}": 0.8 for i in range(6)} if gen else {}
    return ModelLadder("m", "F16", [_variant("F16", base, base_gen), *variants])


def test_exact_mcnemar_and_newcombe_per_task_by_hand() -> None:
    ladder = _ladder({"Q8_0": {"mmlu": (60, 2, 10, 28), "arc_challenge": (30, 3, 3, 14)}})
    rows = {r["task"]: r for r in per_task([ladder])["tests"]}
    mmlu, arc = rows["mmlu"], rows["arc_challenge"]
    # 12 discordant pairs, 2 against 10: p = 2 * P(X <= 2 | 12, 1/2) = 2 * (1 + 12 + 66) / 2^12
    assert mmlu["p_value"] == pytest.approx(2 * 79 / 4096)
    assert mmlu["test"] == "mcnemar (exact)" and mmlu["n"] == 100
    assert mmlu["change"] == pytest.approx(-8.0) and mmlu["low"] < -8.0 < mmlu["high"] < 0
    assert mmlu["flips"] == {"correct_to_wrong": 10, "wrong_to_correct": 2}
    assert arc["p_value"] == 1.0 and arc["change"] == 0.0  # 3 against 3


def test_holm_within_each_family_matches_statsmodels() -> None:
    tables = {
        "Q8_0": {"mmlu": (60, 1, 2, 37), "arc_challenge": (30, 0, 1, 19)},
        "Q4_K_M": {"mmlu": (55, 2, 9, 34), "arc_challenge": (28, 1, 4, 17)},
        "Q2_K": {"mmlu": (40, 2, 25, 33), "arc_challenge": (20, 0, 11, 19)},
    }
    result = per_task([_ladder(tables, gen=True)])
    bench = [r for r in result["tests"] if r["kind"] == "benchmark"]
    gen = [r for r in result["tests"] if r["kind"] == "generation"]
    assert len(bench) == 6 and len(gen) == 3
    for family in (bench, gen):
        raw = [r["p_value"] for r in family]
        reject, adjusted, _, _ = multipletests(raw, alpha=0.05, method="holm")
        assert [r["p_holm"] for r in family] == pytest.approx(list(adjusted))
        assert [r["survives_holm"] for r in family] == list(reject)
    q2 = {r["task"]: r for r in bench if r["level"] == "Q2_K"}
    assert q2["mmlu"]["survives_holm"] and q2["arc_challenge"]["survives_holm"]
    assert not any(r["survives_holm"] for r in bench if r["level"] == "Q8_0")
    # generation: Q2_K halves 3 of 6 items from 0.8 to 0.7, a -6.25% change
    q2_gen = next(r for r in gen if r["level"] == "Q2_K")
    assert q2_gen["change"] == pytest.approx(-6.25) and q2_gen["test"] == "wilcoxon"
    assert q2_gen["low"] < -6.25 < q2_gen["high"]


def test_holm_by_hand() -> None:
    from quantmatrix.analysis.stats.per_task import _holm

    rows = [{"p_value": p} for p in (0.01, 0.04, 0.03)]
    out = _holm(rows, 0.05)  # sorted 0.01*3, 0.03*2, 0.04*1 -> 0.03, 0.06, max(0.06, 0.04)
    assert [r["p_holm"] for r in out] == pytest.approx([0.03, 0.06, 0.06])
    assert [r["survives_holm"] for r in out] == [True, False, False]


def test_differential_by_hand() -> None:
    res = change_difference(PairedCounts(60, 2, 10, 28), PairedCounts(30, 3, 3, 14))
    assert res is not None
    # Bonett-Price: a = (3 - 11) / 102, var (14/102 - a^2) / 102; b = 0, var (8/52) / 52
    d_a, d_b = -8 / 102, 0.0
    var = (14 / 102 - d_a**2) / 102 + (8 / 52) / 52
    z = (d_a - d_b) / math.sqrt(var)
    assert res.z == pytest.approx(z) and res.z == pytest.approx(-1.20394, abs=1e-5)
    assert res.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    assert res.diff == pytest.approx(-8.0)
    half = 1.959963984540054 * math.sqrt(var)
    assert (res.low, res.high) == pytest.approx((100 * (d_a - half), 100 * (d_a + half)))
    assert change_difference(PairedCounts(0, 0, 0, 0), PairedCounts(1, 0, 0, 1)) is None


def _simulate(
    p_a: tuple[float, float], p_b: tuple[float, float], n: tuple[int, int], reps: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``reps`` pairs of tables (cells: gained, lost, rest) with known true changes."""
    rng = np.random.default_rng(seed)
    tables = []
    for (gain, lose), size in zip((p_a, p_b), n, strict=True):
        cells = rng.multinomial(size, [gain, lose, 1 - gain - lose], size=reps)
        tables.append((cells[:, 0], cells[:, 1], np.full(reps, size)))
    diff, se, p = difference_arrays(tables[0], tables[1])
    truth = (p_a[0] - p_a[1]) - (p_b[0] - p_b[1])
    return diff, se, p, truth


def test_differential_size_and_coverage_by_simulation() -> None:
    reps = 20_000
    # equal true changes (-5pp each, different flip rates and sizes): the test's size
    _, _, p, _ = _simulate((0.03, 0.08), (0.01, 0.06), (150, 90), reps, 1)
    size = float(np.mean(p < 0.05))
    assert 0.02 < size < 0.06, size  # 0.031 at seed 1: a little conservative
    # different true changes (-5pp vs -15pp): 95% coverage of the difference and some power
    diff, se, p, truth = _simulate((0.03, 0.08), (0.02, 0.17), (150, 90), reps, 2)
    covered = float(np.mean(np.abs(diff - truth) <= 1.959963984540054 * se))
    assert 0.935 < covered < 0.965, covered
    # power as the normal approximation gives it at the expected cells (about 0.45; the
    # pseudo-counts shrink the estimate a little, so a little under the unadjusted 0.50)
    expected = [
        (np.asarray([n * g]), np.asarray([n * lo]), np.asarray([n]))
        for g, lo, n in ((0.03, 0.08, 150), (0.02, 0.17, 90))
    ]
    mean, se_mean, _ = difference_arrays(expected[0], expected[1])
    power = 0.5 * math.erfc(
        -(abs(float(mean[0])) / float(se_mean[0]) - 1.959963984540054) / math.sqrt(2)
    )
    assert float(np.mean(p < 0.05)) == pytest.approx(power, abs=0.02)
    # no flips on a small benchmark: pseudo-counts keep the variance positive
    _, se0, p0, _ = _simulate((0.0, 0.0), (0.0, 0.0), (10, 10), 5, 3)
    assert np.all(se0 > 0) and np.all(p0 == 1.0)


def test_one_task_only_has_no_differential() -> None:
    stats = build_statistics([_ladder({"Q8_0": {"mmlu": (60, 2, 10, 28)}})])
    assert [t.task for t in stats.per_task.tests] == ["mmlu"]
    assert stats.per_task.differential == ()
    md = render_statistics_md(stats)
    assert "### Per task" in md and "No MMLU-vs-ARC differential" in md


def _fake_run(tmp: Path) -> Path:
    """F16 and Q8_0 right everywhere; Q4_K_M wrong on every MMLU item, right on ARC, and a
    degenerate loop on generation."""
    from quantmatrix.backends.fake import FakeBackend
    from quantmatrix.pipeline import RunOptions, run_study
    from quantmatrix.tasks.plan import plan_samples
    from tests.conftest import fake_study_dict
    from tests.test_generation_pipeline import REFERENCES, LexicalScorer

    tasks = [
        {"kind": "mmlu", "per_subject": None, "n": 12},
        {"kind": "arc_challenge", "n": 6},
        {"kind": "generation", "per_task": 2, "max_new_tokens": 64},
    ]
    study = parse_study(fake_study_dict(tasks=tasks, scoring={"batch_size": 4}))
    golds = {f"{s.task}|{s.item}": s.inputs.get("gold") for s in plan_samples(study)}

    def factory(variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        level = variant.level

        def reply(request: GenerationRequest) -> str:
            ref = REFERENCES.get(request.prompt)
            key = request.key
            if ref is not None:
                return "the same thing " * 12 if level == "Q4_K_M" else ref
            if golds.get(key) is None:
                return "ready"
            wrong = level == "Q4_K_M" and key.startswith("mmlu|")
            return "not sure" if wrong else f"The answer is {golds[key]}"

        return FakeBackend(reply)

    run_study(study, RunOptions(tmp / "run", tmp / "cache"), factory, LexicalScorer())
    return tmp / "run"


def test_fake_run_through_analyze(tmp_path: Path) -> None:
    from quantmatrix.analysis.build import analyze
    from quantmatrix.runlog import RunLog

    stats = analyze(RunLog.load(_fake_run(tmp_path))).statistics.per_task
    bench = {(t.level, t.task): t for t in stats.tests if t.kind == "benchmark"}
    assert set(bench) == {(lv, t) for lv in ("Q8_0", "Q4_K_M") for t in ("mmlu", "arc_challenge")}
    mmlu = bench[("Q4_K_M", "mmlu")]
    assert (mmlu.n, mmlu.change) == (12, -100.0)
    assert mmlu.p_value == pytest.approx(2 * 0.5**12)  # 12 flips, all one way
    assert mmlu.p_holm == pytest.approx(4 * 2 * 0.5**12) and mmlu.survives_holm
    assert bench[("Q4_K_M", "arc_challenge")].change == 0.0
    assert not bench[("Q8_0", "mmlu")].survives_holm
    gen = [t for t in stats.tests if t.kind == "generation" and t.level == "Q4_K_M"]
    assert len(gen) == 5 and all(t.n == 2 and t.change is not None and t.change < -50 for t in gen)
    diff = {d.level: d for d in stats.differential}
    assert diff["Q4_K_M"].diff == -100.0 and diff["Q4_K_M"].survives_holm
    assert diff["Q8_0"].diff == 0.0 and not diff["Q8_0"].survives_holm


def test_keys_without_a_task_form_one_task() -> None:
    base = {f"item-{i}": i % 2 == 0 for i in range(10)}
    var = {k: v and k != "item-0" for k, v in base.items()}
    ladder = ModelLadder("m", "F16", [_variant("F16", base, {}), _variant("Q8_0", var, {})])
    rows = per_task([ladder])["tests"]
    assert [(r["task"], r["n"], r["change"]) for r in rows] == [("(no task)", 10, -10.0)]
