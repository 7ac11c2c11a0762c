"""Multiple choice, scored three ways (``decoding.mc_scoring``):

- ``generation``, as the published study answered it: the model writes its answer, and a letter
  extractor rescoring the text gives the accuracy;
- ``letters``: one token is generated and the answer is the option letter with the highest
  probability at that first step (the letter distribution comes with the result);
- ``both``: generation-based accuracy, plus the letter distribution of the same first step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from quantmatrix.config import MCScoring
from quantmatrix.data.benchmarks import MCItem
from quantmatrix.runlog.rows import SampleRow
from quantmatrix.scoring.divergence import entropy_probs
from quantmatrix.scoring.letters import extract_letter, raw_exact_match
from quantmatrix.tasks.base import Sample

PROMPT_VERSION = 1


def _letter(i: int) -> str:
    return chr(ord("A") + i)


def render_prompt(item: MCItem) -> str:
    about = f" about {item.subject.replace('_', ' ')}" if item.subject else ""
    options = "\n".join(f"{_letter(i)}. {c}" for i, c in enumerate(item.choices))
    last = _letter(len(item.choices) - 1)
    return (
        f"The following is a multiple choice question{about}. "
        f"Reply with only the letter (A-{last}) of the correct answer.\n\n"
        f"{item.question.strip()}\n{options}\nAnswer:"
    )


def to_sample(
    item: MCItem, max_tokens: int, stop_at_line_end: bool, scoring: MCScoring = "generation"
) -> Sample:
    letters_only = scoring == "letters"
    return Sample(
        task=item.task,
        item=item.id,
        kind="multiple_choice",
        prompt=render_prompt(item),
        max_tokens=1 if letters_only else max_tokens,
        stop_at_line_end=False if letters_only else stop_at_line_end,
        inputs={
            "choices": list(item.choices),
            "gold": item.gold_letter,
            "subject": item.subject,
            "prompt_version": PROMPT_VERSION,
            "scoring": scoring,
        },
        letter_count=0 if scoring == "generation" else len(item.choices),
    )


def letter_stats(probs: Sequence[float], gold: str) -> dict[str, Any]:
    """A letter distribution's numbers: the absolute probabilities, their sum (``letter_mass``),
    the distribution renormalised over the options, its argmax, entropy, mass on the gold."""
    p = np.asarray(probs, dtype=np.float64)
    mass = float(p.sum())
    dist = p / mass if mass > 0 else np.full(len(p), 1 / len(p))
    letters = "".join(_letter(i) for i in range(len(p)))
    pred = letters[int(np.argmax(dist))]
    answer = letters.index(gold)
    return {
        "letters": letters,
        "probs": [float(x) for x in p],
        "letter_mass": mass,
        "dist": [float(x) for x in dist],
        "pred": pred,
        "gold": gold,
        "p_gold": float(dist[answer]),
        "correct": pred == gold,
        "entropy": float(entropy_probs(dist)),
    }


def score(
    output: str, inputs: dict[str, Any], letter_probs: Sequence[float] | None = None
) -> dict[str, Any]:
    """Per-sample scores: raw exact match and the rescored letter of the reply, or (scoring
    ``letters``) the most probable option letter; unparsed when the backend gave none."""
    raw = raw_exact_match(output, inputs["gold"])
    if inputs.get("scoring") == "letters":
        if letter_probs is None:
            return {"raw_exact": raw, "pred": None, "method": "letter-prob", "parsed": False,
                    "correct": False}  # fmt: skip
        pred = letter_stats(letter_probs, inputs["gold"])["pred"]
        return {"raw_exact": raw, "pred": pred, "method": "letter-prob", "parsed": True,
                "correct": pred == inputs["gold"]}  # fmt: skip
    found = extract_letter(output, inputs["choices"])
    return {
        "raw_exact": raw,
        "pred": found.letter,
        "method": found.method,
        "parsed": found.parsed,
        "correct": found.letter == inputs["gold"],
    }


def score_row(row: SampleRow) -> dict[str, Any]:
    """:func:`score` of a logged sample row (its reply, inputs and letter probabilities)."""
    letters = row.letters
    return score(row.output, row.input, None if letters is None else letters.probs)
