"""Open-ended generation: the model answers a prompt; the scoring phase compares the answer
with the reference (and with the baseline variant's own answer)."""

from __future__ import annotations

from quantmatrix.data.generation import GenerationItem
from quantmatrix.tasks.base import Sample

PROMPT_VERSION = 1


def to_sample(item: GenerationItem, max_tokens: int) -> Sample:
    return Sample(
        task=item.task,
        item=item.id,
        kind="generation",
        prompt=item.prompt,
        max_tokens=max_tokens,
        stop_at_line_end=False,
        inputs={
            "reference": item.reference,
            "labels": list(item.labels),
            "prompt_version": PROMPT_VERSION,
        },
    )
