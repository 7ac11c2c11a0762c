"""Generation-based multiple choice, as the published study answered it: the model writes its
answer, and a letter extractor rescoring the text gives the accuracy."""

from __future__ import annotations

from typing import Any

from quantmatrix.data.benchmarks import MCItem
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


def to_sample(item: MCItem, max_tokens: int, stop_at_line_end: bool) -> Sample:
    return Sample(
        task=item.task,
        item=item.id,
        prompt=render_prompt(item),
        max_tokens=max_tokens,
        stop_at_line_end=stop_at_line_end,
        inputs={
            "choices": list(item.choices),
            "gold": item.gold_letter,
            "subject": item.subject,
            "prompt_version": PROMPT_VERSION,
        },
    )


def score(output: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Per-sample scores from the reply alone: raw exact match and the rescored letter."""
    found = extract_letter(output, inputs["choices"])
    return {
        "raw_exact": raw_exact_match(output, inputs["gold"]),
        "pred": found.letter,
        "method": found.method,
        "parsed": found.parsed,
        "correct": found.letter == inputs["gold"],
    }
