"""Unit and property tests for the statistics functions (quantmatrix.analysis.stats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from quantmatrix.analysis.stats import (
    describe,
    equivalence,
    multiplicity,
    power,
    significance,
)

ALPHA = 0.05
bools = st.lists(st.booleans(), min_size=2, max_size=80)
floats = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=60,
)


def _from_table(table: list[list[int]]) -> tuple[list[bool], list[bool]]:
    """Paired vectors (a, b) from a 2x2 table [[both, a only], [b only, neither]]."""
    (both, a_only), (b_only, neither) = table
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return a, b


def _equivalence_dataset() -> tuple[list[float], list[float]]:
    """485 items, baseline 70% correct (340), variant flips 4 items each way."""
    base = [1.0] * 340 + [0.0] * 145
    var = list(base)
    for i in range(4):
        var[i] = 0.0  # correct -> wrong
        var[340 + i] = 1.0  # wrong -> correct
    return base, var


# --- published-study figures ---------------------------------------------------------------


def test_wilson_ci_matches_study() -> None:
    ci = describe.wilson_ci(351, 485)
    assert ci is not None
    assert (round(ci[0], 3), round(ci[1], 3)) == (0.682, 0.762)


def test_wilson_ci_empty_is_none() -> None:
    assert describe.wilson_ci(0, 0) is None


def test_binary_mde_matches_study() -> None:
    mde = power.mde_binary_unpaired(485, 0.5, 0.05, 0.8)
    assert mde is not None
    assert mde * 100 == pytest.approx(9.0, abs=0.1)


def test_bonferroni_alpha_for_116_tests() -> None:
    assert round(multiplicity.bonferroni_alpha(0.05, 116), 6) == 0.000431
    corr = multiplicity.correct_pvalues([0.5] * 116)
    assert corr.bonferroni_alpha is not None
    assert round(corr.bonferroni_alpha, 6) == 0.000431


# --- McNemar ---------------------------------------------------------------------------------


def test_mcnemar_statsmodels_example_table_uses_mid_p() -> None:
    # statsmodels' documented example (Agresti): [[794, 86], [150, 570]]; exact p = 3.716e-05.
    a, b = _from_table([[794, 86], [150, 570]])
    res = significance.mcnemar_test(a, b)
    assert (res.correct_to_wrong, res.wrong_to_correct) == (86, 150)
    assert res.method == "mid-p"
    exact = 2 * binom.cdf(86, 236, 0.5)
    assert exact == pytest.approx(3.7159e-05, rel=1e-3)
    assert res.p_value == pytest.approx(exact - binom.pmf(86, 236, 0.5), rel=1e-9)
    assert 0 < res.p_value < exact


def test_mcnemar_exact_small_discordance() -> None:
    # 1 vs 9 discordant pairs: exact two-sided p = 2 * (1 + 10) / 2**10.
    a, b = _from_table([[5, 1], [9, 5]])
    res = significance.mcnemar_test(a, b)
    assert res.method == "exact"
    assert res.p_value == pytest.approx(22 / 1024)


def test_mcnemar_balanced_mid_p_is_one() -> None:
    a, b = _from_table([[100, 20], [20, 100]])
    res = significance.mcnemar_test(a, b)
    assert (res.method, res.p_value) == ("mid-p", 1.0)


# --- Welch, paired ---------------------------------------------------------------------------


def test_welch_and_cohen_d_hand_checked() -> None:
    res = significance.welch_test([1, 2, 3, 4], [2, 3, 4, 5])
    assert res.diff == 1.0
    assert res.df == pytest.approx(6.0)
    assert res.p_value == pytest.approx(0.315334, abs=1e-6)
    assert res.cohen_d == pytest.approx(1 / math.sqrt(5 / 3))


def test_welch_degenerate_cases_are_defined() -> None:
    assert significance.welch_test([1.0], [0.0]).p_value == 1.0
    assert significance.welch_test([1.0, 1.0], [1.0, 1.0]).p_value == 1.0
    assert significance.welch_test([1.0, 1.0], [0.0, 0.0]).p_value == 0.0


def test_paired_all_zero_differences() -> None:
    res = significance.paired_continuous([0.3, 0.5, 0.7], [0.3, 0.5, 0.7])
    assert (res.t_p_value, res.wilcoxon_p_value) == (1.0, 1.0)


# --- TOST ------------------------------------------------------------------------------------


def test_tost_paired_hand_checked() -> None:
    # d = [-1, 0, 1, 0, 0]: mean 0, se = sqrt(0.5 / 5); t = 1 / se = sqrt(10), df 4.
    res = equivalence.tost_paired([0.0] * 5, [-1.0, 0.0, 1.0, 0.0, 0.0], margin=1.0)
    assert res.p_value == pytest.approx(0.0170547, abs=1e-6)
    assert res.equivalent


def test_tost_unpaired_hand_checked() -> None:
    # identical groups [1, 2, 3]: se = sqrt(2/3), t = 2 / se, Welch df = 4.
    res = equivalence.tost_unpaired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], margin=2.0)
    assert res.p_value == pytest.approx(0.0352420, abs=1e-6)
    assert res.equivalent
    assert not equivalence.tost_unpaired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], margin=1.0).equivalent


def test_paired_confirms_equivalence_where_unpaired_cannot() -> None:
    base, var = _equivalence_dataset()
    paired = equivalence.tost_paired(base, var, 0.03)
    unpaired = equivalence.tost_unpaired(base, var, 0.03)
    assert paired.delta == 0.0
    assert paired.equivalent and paired.p_value < 1e-4
    assert not unpaired.equivalent and unpaired.p_value > 0.1


def test_tost_zero_variance_and_bad_margin() -> None:
    same = [1.0, 0.0, 1.0]
    assert equivalence.tost_paired(same, same, 0.03).equivalent
    assert not equivalence.tost_paired(same, same, 0.0).equivalent
    assert not equivalence.tost_paired([1.0], [1.0], 0.03).equivalent


def test_bounded_paired_tost_needs_items_not_just_zero_variance() -> None:
    """Identical outputs on 10 items (every difference 0) confirm nothing; on 485 items they
    confirm a 3% margin of a 0.5 mean; real spread on 485 items still counts."""
    ten = [0.5] * 10
    assert equivalence.tost_paired(ten, ten, 0.015).equivalent  # the plain t-TOST's loophole
    few = equivalence.tost_paired_bounded(ten, ten, 0.015, bound=1.0)
    assert not few.equivalent and few.delta == 0.0
    many = [0.5] * 485
    assert equivalence.tost_paired_bounded(many, many, 0.015, bound=1.0).equivalent
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, 485)
    noisy = base + rng.normal(0, 0.1, 485)
    res = equivalence.tost_paired_bounded(base.tolist(), noisy.tolist(), 0.015, bound=1.0)
    plain = equivalence.tost_paired(base.tolist(), noisy.tolist(), 0.015)
    assert res.p_value > plain.p_value  # the pseudo-pairs only ever widen the interval
    assert res.delta == pytest.approx(plain.delta)
    assert not equivalence.tost_paired_bounded(ten, ten, 0.015, bound=0.0).equivalent


# --- multiplicity ----------------------------------------------------------------------------


def test_holm_and_bonferroni_survivors() -> None:
    corr = multiplicity.correct_pvalues([0.01, 0.04, 0.03])
    assert corr.p_bonferroni == pytest.approx((0.03, 0.12, 0.09))
    assert corr.p_holm == pytest.approx((0.03, 0.06, 0.06))
    assert corr.survives_holm == (True, False, False)
    assert multiplicity.correct_pvalues([]).n_tests == 0


def test_fixed_sequence_stops_at_first_failure() -> None:
    res = multiplicity.fixed_sequence(
        ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"], [True, True, False, True]
    )
    assert res.lowest_confirmed == "Q6_K"
    assert res.stopped_at == "Q5_K_M"
    assert res.tested == ("Q8_0", "Q6_K", "Q5_K_M")
    assert multiplicity.fixed_sequence(["Q8_0"], [False]).lowest_confirmed is None
    assert multiplicity.fixed_sequence([], []).lowest_confirmed is None


# --- power -----------------------------------------------------------------------------------


def test_paired_mde_from_discordance() -> None:
    unpaired = power.mde_binary_unpaired(485, 0.7)
    paired = power.mde_binary_paired(485, 8 / 485)
    assert unpaired is not None and paired is not None
    assert paired < unpaired
    assert power.mde_binary_paired(485, 0.0) is None
    one_sd = power.mde_continuous(100, 1.0)
    assert one_sd is not None
    assert power.mde_continuous(100, 2.0) == pytest.approx(2 * one_sd)
    assert power.mde_continuous(100, 0.0) is None


def test_n_for_equivalence() -> None:
    base, var = _equivalence_dataset()
    sd_p = power.sd_of_differences(base, var)
    sd_u = power.pooled_sd(base, var)
    n_paired = power.n_for_equivalence(0.0, sd_p, 0.03, paired=True)
    n_unpaired = power.n_for_equivalence(0.0, sd_u, 0.03)
    assert n_paired is not None and n_unpaired is not None
    assert n_paired < 485 < n_unpaired
    assert power.tost_power(n_unpaired, 0.0, sd_u or 0.0, 0.03, 0.05, False) >= 0.8
    assert power.tost_power(n_unpaired - 1, 0.0, sd_u or 0.0, 0.03, 0.05, False) < 0.8
    assert power.n_for_equivalence(0.04, sd_u, 0.03) is None


# --- bootstrap and timing --------------------------------------------------------------------


def test_bootstrap_is_seeded_and_paired() -> None:
    base, var = _equivalence_dataset()
    first = describe.bootstrap_delta_ci(base, var, seed=42)
    assert first == describe.bootstrap_delta_ci(base, var, seed=42)
    assert first.low is not None and first.high is not None
    assert first.low <= 0.0 <= first.high and first.high - first.low < 0.03
    same = describe.bootstrap_delta_ci(base, base)
    assert (same.low, same.high) == (0.0, 0.0)


def test_iqr_outliers_and_cv() -> None:
    res = describe.iqr_outliers([1.0, 2.0, 3.0, 4.0, 100.0])
    assert res.outliers == (4,)
    assert describe.coefficient_of_variation([1.0, 2.0, 3.0]) == pytest.approx(0.5)
    assert describe.iqr_outliers([]).n == 0


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(bools)
def test_identical_variant_is_never_flagged(correct: list[bool]) -> None:
    values = [1.0 if c else 0.0 for c in correct]
    assert significance.welch_test(values, values).p_value == 1.0
    assert significance.mcnemar_test(correct, correct).p_value == 1.0
    paired = significance.paired_continuous(values, values)
    assert (paired.t_p_value, paired.wilcoxon_p_value) == (1.0, 1.0)
    assert equivalence.tost_paired(values, values, 0.03).equivalent


@settings(max_examples=60, deadline=None)
@given(floats)
def test_identical_continuous_metric_is_never_flagged(values: list[float]) -> None:
    assert significance.welch_test(values, values).p_value >= ALPHA
    paired = significance.paired_continuous(values, values)
    assert min(paired.t_p_value, paired.wilcoxon_p_value) == 1.0


@settings(max_examples=25, deadline=None)  # multipletests(holm) runs gc.collect() per call
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=50))
def test_corrections_never_make_p_smaller(p_values: list[float]) -> None:
    corr = multiplicity.correct_pvalues(p_values)
    for raw, bonf, holm in zip(p_values, corr.p_bonferroni, corr.p_holm, strict=True):
        assert bonf >= raw and holm >= raw
        assert bonf >= holm


@settings(max_examples=40, deadline=None)
@given(floats, floats)
def test_paired_tests_return_valid_p(a: list[float], b: list[float]) -> None:
    n = min(len(a), len(b))
    res = significance.paired_continuous(a[:n], b[:n])
    assert 0.0 <= res.t_p_value <= 1.0 and 0.0 <= res.wilcoxon_p_value <= 1.0
    assert 0.0 <= significance.welch_test(a, b).p_value <= 1.0


def test_paired_binary_tost_does_not_confirm_from_a_few_identical_items() -> None:
    from quantmatrix.analysis.stats.equivalence import tost_paired_binary

    same20 = [True] * 10 + [False] * 10
    assert not tost_paired_binary(same20, same20, 0.03).equivalent
    same485 = [True] * 340 + [False] * 145
    assert tost_paired_binary(same485, same485, 0.03).equivalent
    # 4 flips each way on 485 items: adjusted Wald half-width ~1.1pp, inside +/-3pp
    a = [True] * 340 + [False] * 145
    b = a.copy()
    for i in range(4):
        b[i] = False
        b[340 + i] = True
    res = tost_paired_binary(a, b, 0.03)
    assert res.equivalent and res.delta == 0.0
    # a real 6pp loss is never equivalent at +/-3pp
    c = a.copy()
    for i in range(29):
        c[i] = False
    assert not tost_paired_binary(a, c, 0.03).equivalent
