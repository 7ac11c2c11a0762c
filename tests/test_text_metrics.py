"""Hand-computed checks of the per-sample text metrics (quantmatrix.scoring.text_metrics)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantmatrix.scoring.text_metrics import (
    bleu,
    exact_match,
    key_metric_average,
    length_ratio,
    repetition,
    rouge_l_f1,
)

LOOP = "the cat " * 6  # 12 tokens, 9 four-grams, 2 distinct


# --- ROUGE-L -------------------------------------------------------------------------


def test_rouge_l_identical_is_one() -> None:
    assert rouge_l_f1("The cat sat on the mat.", "The cat sat on the mat.") == 1.0


def test_rouge_l_hand_checked_lcs() -> None:
    # LCS("police kill the gunman", "police killed the gunman") = police, the, gunman = 3
    # P = 3/4, R = 3/4, F = 0.75
    assert rouge_l_f1("police kill the gunman", "police killed the gunman") == pytest.approx(0.75)
    # Word order matters: LCS("the gunman kill police", ...) = "the gunman" = 2 -> F = 0.5
    assert rouge_l_f1("the gunman kill police", "police killed the gunman") == pytest.approx(0.5)


def test_rouge_l_unequal_lengths() -> None:
    # LCS = "a b c" = 3; P = 3/3, R = 3/6, F = 2PR/(P+R) = 2/3
    assert rouge_l_f1("a b c", "a x b y c z") == pytest.approx(2 / 3)


def test_rouge_l_empty_and_unicode() -> None:
    assert rouge_l_f1("", "the cat") == 0.0
    assert rouge_l_f1("the cat", "") == 0.0
    # rouge_score keeps only [a-z0-9]: "café" -> "caf", so LCS = "au lait" = 2 of 3 each side
    assert rouge_l_f1("café au lait", "cafe au lait") == pytest.approx(2 / 3)
    # A text with no ASCII letters or digits has no tokens at all
    assert rouge_l_f1("日本語のテキスト", "日本語のテキスト") == 0.0


def test_rouge_l_looping_output() -> None:
    # candidate 12 tokens, reference "the cat" 2 tokens: LCS = 2; P = 2/12, R = 1
    p, r = 2 / 12, 1.0
    assert rouge_l_f1(LOOP, "the cat") == pytest.approx(2 * p * r / (p + r))


# --- BLEU ----------------------------------------------------------------------------


def test_bleu_identical_is_one() -> None:
    text = "the quick brown fox jumps over the lazy dog"
    assert bleu(text, text) == pytest.approx(1.0)
    assert bleu(text, text) <= 1.0


def test_bleu_hand_computed_precisions() -> None:
    # clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths so no brevity penalty
    expected = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert bleu("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(expected)


def test_bleu_brevity_penalty() -> None:
    # every n-gram matches, candidate 4 words vs reference 6: BP = exp(1 - 6/4)
    assert bleu("the cat sat on", "the cat sat on the mat") == pytest.approx(math.exp(-0.5))


def test_bleu_empty_candidate_is_zero() -> None:
    assert bleu("", "the cat sat on the mat") == 0.0


# --- exact match ---------------------------------------------------------------------


def test_exact_match_case_and_whitespace() -> None:
    assert exact_match("  Paris\n", "paris") == 1.0
    assert exact_match("Paris.", "Paris") == 0.0
    assert exact_match("", "") == 1.0
    assert exact_match("", "Paris") == 0.0


def test_exact_match_unicode_casefold() -> None:
    assert exact_match("ÉCOLE", "école") == 1.0
    assert exact_match("STRASSE", "straße") == 1.0  # casefold maps ß to ss


# --- length ratio --------------------------------------------------------------------


def test_length_ratio_values() -> None:
    assert length_ratio("a b c", "a b c d e f") == 0.5
    assert length_ratio("a b c d e f", "a b c") == 0.5
    assert length_ratio("one two", "three four") == 1.0
    assert length_ratio("", "") == 1.0
    assert length_ratio("   ", "") == 1.0
    assert length_ratio("", "a b") == 0.0
    assert length_ratio("a b", "") == 0.0
    assert length_ratio("日本 語", "東京") == 0.5  # words are whitespace-separated


# --- repetition ----------------------------------------------------------------------


def test_repetition_no_repeats_is_one() -> None:
    assert repetition("a b c d e f g") == 1.0


def test_repetition_short_text_is_one() -> None:
    assert repetition("") == 1.0
    assert repetition("a b c") == 1.0


def test_repetition_looping_output() -> None:
    # "the cat" x6: four-grams alternate between (the cat the cat) and (cat the cat the)
    assert repetition(LOOP) == pytest.approx(2 / 9)
    # "the cat the cat the cat the cat": 5 four-grams, 2 distinct
    assert repetition("the cat the cat the cat the cat") == pytest.approx(2 / 5)


def test_repetition_partial_loop() -> None:
    # tokens: a b c d a b c d -> 5 four-grams: abcd bcda cdab dabc abcd -> 4 distinct
    assert repetition("a b c d a b c d") == pytest.approx(4 / 5)


def test_repetition_unicode_tokens() -> None:
    assert repetition("猫 犬 猫 犬 猫 犬") == pytest.approx(2 / 3)  # 3 four-grams, 2 distinct


# --- key metric average --------------------------------------------------------------


def test_key_metric_average() -> None:
    assert key_metric_average(0.9, 0.6, 0.3) == pytest.approx(0.6)
    assert key_metric_average(1.0, 1.0, 1.0) == 1.0


# --- ranges --------------------------------------------------------------------------

texts = st.text(alphabet=st.sampled_from(list("ab cé日 \n")), max_size=40)


@settings(max_examples=60, deadline=None)
@given(texts, texts)
def test_lexical_metrics_stay_in_unit_range(candidate: str, reference: str) -> None:
    for metric in (rouge_l_f1, bleu, exact_match, length_ratio):
        assert 0.0 <= metric(candidate, reference) <= 1.0
    assert 0.0 < repetition(candidate) <= 1.0
