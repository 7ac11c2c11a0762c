"""Tests for build_statistics (analysis.stats.section) and render_statistics_md (report)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from quantmatrix.analysis.stats.inputs import ModelLadder, VariantOutcomes
from quantmatrix.analysis.stats.model import Statistics
from quantmatrix.analysis.stats.section import build_statistics
from quantmatrix.report.stats_md import render_statistics_md

LEVELS = ["F16", "Q8_0", "Q6_K", "Q4_K_M", "Q2_K"]
KEYS = [f"item-{i:03d}" for i in range(485)]
SECTIONS = ["wilson", "adjacent", "corrections", "equivalence", "ladder", "power"]
SECTIONS += ["bootstrap", "timing", "per_task", "summary"]


def _variant(
    model: str, level: str, correct: dict[str, bool], metrics: dict[str, dict[str, float]]
) -> VariantOutcomes:
    ttft = [0.1 + 0.001 * i for i in range(20)] + [0.9]
    tps = [50.0 + 0.1 * i for i in range(21)]
    return VariantOutcomes(f"{model}@{level}", model, level, correct, metrics, ttft, tps)


def _flipped(base: dict[str, bool], n_each: int) -> dict[str, bool]:
    """Flip ``n_each`` correct items to wrong and ``n_each`` wrong items to correct."""
    right = [k for k in KEYS if base[k]][:n_each]
    wrong = [k for k in KEYS if not base[k]][:n_each]
    return {k: (not v) if k in right or k in wrong else v for k, v in base.items()}


def _correlated_ladder() -> ModelLadder:
    """Baseline 70% correct (340/485); Q8_0 flips 4 items each way; Q2_K loses 60 items."""
    base = {k: i < 340 for i, k in enumerate(KEYS)}
    q2 = {k: v and i >= 60 for i, (k, v) in enumerate(base.items())}
    variants = [
        _variant("m", "F16", base, {}),
        _variant("m", "Q8_0", _flipped(base, 4), {}),
        _variant("m", "Q2_K", q2, {}),
    ]
    return ModelLadder("m", "F16", variants)


def _random_ladder(model: str, seed: int) -> ModelLadder:
    rng = random.Random(seed)
    base = {k: rng.random() < 0.7 for k in KEYS}
    variants = []
    for j, level in enumerate(LEVELS):
        p_flip = 0.01 * j * j
        correct = {k: (not v) if rng.random() < p_flip else v for k, v in base.items()}
        score = {k: rng.random() * (1.0 - 0.05 * j) for k in KEYS}
        variants.append(_variant(model, level, correct, {"rougeL": score}))
    return ModelLadder(model, "F16", variants)


def _stats(**kwargs: Any) -> Statistics:
    return build_statistics([_random_ladder("a", 1), _random_ladder("b", 2)], **kwargs)


def test_sections_present_and_json_safe() -> None:
    stats = _stats()
    for section in SECTIONS:
        assert section in stats.model_dump()
    text = json.dumps(stats.model_dump(mode="json"), allow_nan=False, sort_keys=True)
    assert Statistics.model_validate_json(text) == stats


def test_adjacent_tests_cover_accuracy_and_metrics() -> None:
    stats = _stats()
    steps = 2 * (len(LEVELS) - 1)
    assert len(stats.adjacent) == steps * 2
    assert {e.metric for e in stats.adjacent} == {"accuracy", "rougeL"}
    for family in ("welch", "paired"):
        fam = stats.corrections[family]
        assert fam.n_tests == steps * 2
        assert fam.bonferroni_alpha == pytest.approx(0.05 / (steps * 2))
        for row in fam.tests:
            assert row.p_holm >= row.p and row.p_bonferroni >= row.p_holm
        assert list(fam.survivors_holm) == [r.id for r in fam.tests if r.survives_holm]
    accuracy = [e for e in stats.adjacent if e.metric == "accuracy"]
    assert all(e.flips is not None for e in accuracy)
    assert all(
        set(e.flips.model_dump()) == {"correct_to_wrong", "wrong_to_correct"}
        for e in accuracy
        if e.flips
    )


def test_equivalence_every_variant_both_margins_both_designs() -> None:
    stats = _stats()
    per_variant = 2 * 2 * 2  # metrics x margins x designs
    assert len(stats.equivalence) == 2 * (len(LEVELS) - 1) * per_variant
    labels = {r.margin_label for r in stats.equivalence}
    assert labels == {"3pp", "5pp", "3%", "5%"}


def test_paired_design_confirms_where_unpaired_cannot() -> None:
    stats = build_statistics([_correlated_ladder()])
    counts = stats.summary.accuracy_equivalent
    assert counts["paired"]["3pp"] == 1
    assert counts["unpaired"]["3pp"] == 0
    ladder = {(r.margin_label, r.design): r for r in stats.ladder}
    assert ladder[("3pp", "paired")].lowest_confirmed == "Q8_0"
    assert ladder[("3pp", "paired")].stopped_at == "Q2_K"
    assert ladder[("3pp", "unpaired")].lowest_confirmed is None
    flips = stats.adjacent[0].flips
    assert flips is not None
    assert flips.model_dump() == {"correct_to_wrong": 4, "wrong_to_correct": 4}


def test_identical_variants_are_never_flagged() -> None:
    base = {k: i % 3 != 0 for i, k in enumerate(KEYS)}
    score = {k: (i % 7) / 7 for i, k in enumerate(KEYS)}
    variants = [_variant("m", lv, base, {"bleu": score}) for lv in LEVELS]
    stats = build_statistics([ModelLadder("m", "F16", variants)])
    for entry in stats.adjacent:
        assert entry.welch.p_value == 1.0
        assert entry.paired.p_value == 1.0
    for family in stats.corrections.values():
        assert family.survivors_bonferroni == () and family.survivors_holm == ()
    assert all(r.equivalent for r in stats.equivalence if r.design == "paired")
    assert stats.summary.accuracy_equivalent["paired"] == {"3pp": 4, "5pp": 4}


def test_power_section() -> None:
    stats = build_statistics([_correlated_ladder()])
    model = stats.power.models[0]
    assert model.n == 485
    assert model.mde_unpaired_worst_case == pytest.approx(0.090, abs=0.001)
    q8 = stats.power.variants[0]
    assert q8.discordance == pytest.approx(8 / 485)
    assert q8.n_equivalence_3pp_paired < 485 < q8.n_equivalence_3pp_unpaired
    assert stats.power.variants[1].n_equivalence_3pp_paired is None


def test_single_variant_ladder_and_empty_metrics() -> None:
    only = ModelLadder("s", "F16", [_variant("s", "F16", {"x": True, "y": False}, {})])
    empty = ModelLadder("e", "F16", [VariantOutcomes("e@F16", "e", "F16", {}, {}, [], [])])
    stats = build_statistics([only, empty])
    json.dumps(stats.model_dump(mode="json"), allow_nan=False)
    assert stats.adjacent == () and stats.equivalence == ()
    assert stats.corrections["welch"].n_tests == 0
    assert [r.accuracy for r in stats.wilson] == [0.5, None]
    md = render_statistics_md(stats)
    assert md.startswith("## Statistics\n")


def test_degenerate_outcomes_have_no_nan() -> None:
    all_right = {k: True for k in KEYS[:10]}
    ladder = ModelLadder(
        "d", "F16", [_variant("d", "F16", all_right, {}), _variant("d", "Q4_K_M", all_right, {})]
    )
    stats = build_statistics([ladder])
    json.dumps(stats.model_dump(mode="json"), allow_nan=False)
    assert stats.bootstrap[0].low == 0.0


def test_markdown_is_deterministic_and_complete() -> None:
    first = render_statistics_md(_stats(seed=7))
    second = render_statistics_md(_stats(seed=7))
    assert first == second
    for heading in ("## Statistics", "### Adjacent-level tests", "### Equivalence", "### Power"):
        assert heading in first
    for heading in ("### Fixed-sequence ladder", "### Bootstrap", "### Timing"):
        assert heading in first
    assert "seed 7" in first
    assert "| a | F16→Q8_0 | accuracy |" in first


def test_timing_outliers_reported() -> None:
    stats = build_statistics([_correlated_ladder()])
    ttft = stats.timing[0].ttft_s
    assert ttft.outliers == (20,)
    assert stats.timing[0].decode_tps.outliers == ()
