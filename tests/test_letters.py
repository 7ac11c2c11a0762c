from __future__ import annotations

import pytest

from quantmatrix.scoring.letters import extract_letter, raw_exact_match

FOUR = ["Paris", "London", "Berlin", "Madrid"]


@pytest.mark.parametrize(
    ("output", "letter"),
    [
        ("B", "B"),
        ("B)", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("B. London", "B"),
        ("The answer is B", "B"),
        ("The answer is (B).", "B"),
        ("Answer: B", "B"),
        ("answer: b", "B"),
        ("**B**", "B"),
        ("**Answer: C**", "C"),
        ("London", "B"),
        ("The capital is Berlin.", "C"),
        ("  D\n", "D"),
        ("I think option D is right", "D"),
    ],
)
def test_extracts_the_letter(output: str, letter: str) -> None:
    assert extract_letter(output, FOUR).letter == letter


def test_letters_beyond_d() -> None:
    choices = ["a", "b", "c", "d", "e", "f", "g"]
    assert extract_letter("F", choices).letter == "F"
    assert extract_letter("The answer is G", choices).letter == "G"
    assert extract_letter("E)", choices[:5]).letter == "E"
    # a letter past the last option is not an answer
    assert extract_letter("E", FOUR).letter is None


@pytest.mark.parametrize("output", ["", "I do not know", "A good question", "Paris or London"])
def test_unparseable_is_recorded_not_guessed(output: str) -> None:
    found = extract_letter(output, FOUR)
    assert found.letter is None and found.method == "unparsed" and not found.parsed


def test_raw_exact_match_is_strict() -> None:
    assert raw_exact_match(" B ", "B")
    assert not raw_exact_match("B.", "B")
    assert not raw_exact_match("The answer is B", "B")
