"""Tasks are data: a versioned prompt format plus one pure function from record to request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# what kind of task a sample is of, carried into its log row (``runlog.rows.SampleRow``);
# "many_shot": the long-context probe's multiple choice (tasks/many_shot.py), read apart from
# the study's own items (``runlog.RunLog.many_shot``)
TaskKind = Literal["multiple_choice", "generation", "many_shot"]


@dataclass(frozen=True)
class Sample:
    """One thing to ask a variant: the request text and what the scorer needs."""

    task: str
    item: str
    kind: TaskKind
    prompt: str
    max_tokens: int
    stop_at_line_end: bool
    inputs: dict[str, Any]  # what goes into the log row's "input" (gold, choices, ...)
    letter_count: int = 0  # > 0: ask the backend for the option letters' probabilities
