"""Answer-letter extraction for generation-based multiple choice.

Handles "B", "B)", "(B)", "B.", "The answer is B", "Answer: B", "**B**", the option text itself,
and any number of options (A-E and beyond). Anything else is *unparsed*: recorded and counted as
wrong, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_MARKUP = re.compile(r"[*_`#]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Extraction:
    letter: str | None
    method: str  # "leading", "stated", "bracketed", "option_text", "unparsed"

    @property
    def parsed(self) -> bool:
        return self.letter is not None


def _letters(n_choices: int) -> str:
    return "".join(chr(ord("A") + i) for i in range(n_choices))


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().strip(".").strip().casefold()


def _stated(text: str, valid: str) -> str | None:
    pattern = (
        r"(?:answer|option|choice)\s*(?:is|would be|:|=)?\s*(?:option|choice)?\s*[:\-]?\s*"
        rf"\(?\[?([{valid}])\]?\)?(?![A-Za-z])"
    )
    found = re.search(pattern, text, flags=re.IGNORECASE)
    if found and found.group(1).upper() in valid:
        letter = found.group(1)
        # a lower-case letter only counts right after an explicit "answer:"-style cue
        return letter.upper() if letter.isupper() or ":" in found.group(0) else None
    return None


def _leading(text: str, valid: str) -> str | None:
    found = re.match(rf"[\(\[]?([{valid}])(?:[\)\].:,]|\s+-|\s*$|\s*\n)", text)
    return found.group(1) if found else None


def _bracketed(text: str, valid: str) -> str | None:
    letters = set(re.findall(rf"\(([{valid}])\)", text))
    letters |= set(re.findall(rf"(?<![A-Za-z])([{valid}])\)", text))
    return letters.pop() if len(letters) == 1 else None


def _option_text(text: str, choices: Sequence[str]) -> str | None:
    said = _norm(text)
    if not said:
        return None
    exact = [i for i, c in enumerate(choices) if _norm(c) and _norm(c) == said]
    if len(exact) == 1:
        return chr(ord("A") + exact[0])
    inside = [i for i, c in enumerate(choices) if len(_norm(c)) >= 3 and _norm(c) in said]
    if len(inside) == 1:
        return chr(ord("A") + inside[0])
    return None


def extract_letter(output: str, choices: Sequence[str]) -> Extraction:
    """Find the option letter a model's free-text answer names."""
    valid = _letters(len(choices))
    text = _MARKUP.sub("", output).strip()
    finders: list[tuple[str, Callable[[], str | None]]] = [
        ("stated", lambda: _stated(text, valid)),
        ("leading", lambda: _leading(text, valid)),
        ("bracketed", lambda: _bracketed(text, valid)),
        ("option_text", lambda: _option_text(text, choices)),
    ]
    for method, finder in finders:
        letter = finder()
        if letter is not None:
            return Extraction(letter, method)
    return Extraction(None, "unparsed")


def raw_exact_match(output: str, gold_letter: str) -> bool:
    """The strict score before rescoring: the whole reply is the gold letter and nothing else."""
    return output.strip() == gold_letter
