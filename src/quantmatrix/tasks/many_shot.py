"""Many-shot multiple choice: the long-context probe's accuracy half (``long_context``).

The same ``mc_items`` test questions are asked once per bucket, each after ``k`` solved
examples from the task's validation split, ``k`` chosen per bucket so the prompt lands in it
(``shots``, or as many as fill :data:`FILL` of the bucket's end at :data:`CHARS_PER_TOKEN`,
an estimate: the plan has no tokenizer; the analysis buckets each reply by the prompt tokens
its row logged, and says when one landed outside its planned bucket). Every question of a
bucket gets the same examples in the same order (the first ``k`` of one seeded order, so a
bucket's examples extend the previous bucket's): the long part of the prompt is one shared
prefix, which the batched engine evaluates once per group and restores after that.

Samples are of kind ``many_shot``, task ``many_shot@END``: scored like multiple choice
(``multiple_choice.score``), logged in ``samples.jsonl``, and kept out of every main figure
(``runlog.RunLog.many_shot``).
"""

from __future__ import annotations

from collections.abc import Sequence

from quantmatrix.config import LongContextSpec, Study
from quantmatrix.data.benchmarks import (
    MCItem,
    load_arc_challenge,
    load_arc_challenge_validation,
    load_mmlu,
)
from quantmatrix.tasks.base import Sample

PROMPT_VERSION = 1
CHARS_PER_TOKEN = 4.0  # Qwen2.5 measured 4.6 on Qasper prose; MMLU's shorter words fewer
FILL = 0.7  # the share of a bucket's end a filled prompt aims at
TASK_PREFIX = "many_shot@"
HEADER = (
    "The following are multiple choice questions, each followed by its answer. Reply to the "
    "last question with only the letter of its correct answer.\n\n"
)


def task_name(end: int) -> str:
    return f"{TASK_PREFIX}{end}"


def _letter(i: int) -> str:
    return chr(ord("A") + i)


def _question(item: MCItem) -> str:
    options = "\n".join(f"{_letter(i)}. {c}" for i, c in enumerate(item.choices))
    return f"{item.question.strip()}\n{options}\nAnswer:"


def solved(item: MCItem) -> str:
    return f"{_question(item)} {item.gold_letter}\n\n"


def render_prompt(shots: Sequence[MCItem], item: MCItem) -> str:
    return HEADER + "".join(solved(s) for s in shots) + _question(item)


def fill_counts(
    spec: LongContextSpec, pool: Sequence[MCItem], items: Sequence[MCItem]
) -> list[int]:
    """Per bucket, the most examples (in pool order) that keep an average question's prompt
    within :data:`FILL` of the bucket's end, by the character estimate."""
    if spec.shots is not None:
        return [min(k, len(pool)) for k in spec.shots]
    question = sum(len(_question(it)) for it in items) / max(1, len(items))
    sizes = [len(solved(s)) for s in pool]
    counts = []
    for end in spec.buckets:
        budget = FILL * end * CHARS_PER_TOKEN - len(HEADER) - question
        k, used = 0, 0.0
        while k < len(sizes) and used + sizes[k] <= budget:
            used += sizes[k]
            k += 1
        counts.append(k)
    return counts


def _pools(spec: LongContextSpec, seed: int) -> tuple[list[MCItem], list[MCItem]]:
    """(questions from the test split, solved examples from the validation split)."""
    if spec.mc_task == "mmlu":
        # round robin over the subjects, so any number of examples spans them
        return load_mmlu(None, spec.mc_items, "test", seed), load_mmlu(
            None, 10**6, "validation", seed
        )
    return load_arc_challenge(spec.mc_items, seed), load_arc_challenge_validation(seed)


def to_sample(
    item: MCItem, shots: Sequence[MCItem], bucket: tuple[int, int, int], study: Study
) -> Sample:
    """One question after ``shots``; ``bucket`` is (index, start, end) in tokens."""
    dec = study.decoding
    letters_only = dec.mc_scoring == "letters"
    index, start, end = bucket
    return Sample(
        task=task_name(end),
        item=item.id,
        kind="many_shot",
        prompt=render_prompt(shots, item),
        max_tokens=1 if letters_only else dec.mc_max_new_tokens,
        stop_at_line_end=False if letters_only else dec.mc_stop_at_line_end,
        inputs={
            "choices": list(item.choices),
            "gold": item.gold_letter,
            "subject": item.subject,
            "prompt_version": PROMPT_VERSION,
            "scoring": dec.mc_scoring,
            "source_task": item.task,
            "bucket": index,
            "bucket_start": start,
            "bucket_end": end,
            "shots": len(shots),
        },
        letter_count=0 if dec.mc_scoring == "generation" else len(item.choices),
    )


def many_shot_samples(study: Study) -> list[Sample]:
    """Every bucket's questions, bucket after bucket (none without ``long_context.mc_items``)."""
    spec = study.long_context
    if spec is None or not spec.mc_items:
        return []
    items, pool = _pools(spec, study.selection_seed)
    counts = fill_counts(spec, pool, items)
    return [
        to_sample(item, pool[:k], (b, start, end), study)
        for b, ((start, end), k) in enumerate(zip(spec.bounds(), counts, strict=True))
        for item in items
    ]
