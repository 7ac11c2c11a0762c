"""Generation-quality task items: the packaged set or a user's JSONL file.

Each line of a task file is one JSON object with ``id``, ``task``, ``prompt`` and
``reference`` (strings); classification items also carry ``labels`` (a list of strings).
Other keys (such as ``version``) are allowed and ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

PACKAGED_FILE = "generation_tasks.jsonl"
TASKS: tuple[str, ...] = (
    "summarization",
    "qa",
    "code_generation",
    "creative_writing",
    "classification",
)
_REQUIRED = ("id", "task", "prompt", "reference")


@dataclass(frozen=True)
class GenerationItem:
    """One prompt with its reference answer."""

    id: str
    task: str
    prompt: str
    reference: str
    labels: tuple[str, ...] = ()


def load_generation_items(
    path: Path | None = None,
    tasks: Sequence[str] | None = None,
    per_task: int | None = None,
) -> list[GenerationItem]:
    """Load task items, sorted by task (in :data:`TASKS` order, then others) and id.

    ``path`` is a local JSONL file; ``None`` means the packaged set. ``tasks`` keeps only those
    task names (an unknown name is a ``ValueError``). ``per_task`` keeps the first N items of
    each task in id order, so the same N always gives the same items.
    """
    source = str(path) if path is not None else PACKAGED_FILE
    items = list(_parse_lines(_read_lines(path), source))
    _check_unique_ids(items, source)
    if tasks is not None:
        known = {item.task for item in items}
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise ValueError(f"{source}: no items for task(s) {', '.join(unknown)}")
        wanted = set(tasks)
        items = [item for item in items if item.task in wanted]
    items.sort(key=_sort_key)
    if per_task is not None:
        items = _first_per_task(items, per_task)
    return items


def _sort_key(item: GenerationItem) -> tuple[int, str, str]:
    rank = TASKS.index(item.task) if item.task in TASKS else len(TASKS)
    return rank, item.task, item.id


def _read_lines(path: Path | None) -> list[str]:
    if path is None:
        text = resources.files("quantmatrix.data").joinpath(PACKAGED_FILE).read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return text.splitlines()


def _parse_lines(lines: Iterable[str], source: str) -> Iterable[GenerationItem]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield _parse_line(line, number, source)


def _parse_line(line: str, number: int, source: str) -> GenerationItem:
    where = f"{source}: line {number}"
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object")
    for field in _REQUIRED:
        if field not in obj:
            raise ValueError(f"{where}: missing field '{field}'")
        if not isinstance(obj[field], str):
            raise ValueError(f"{where}: field '{field}' must be a string")
    labels = obj.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"{where}: field 'labels' must be a list of strings")
    return GenerationItem(
        id=obj["id"],
        task=obj["task"],
        prompt=obj["prompt"],
        reference=obj["reference"],
        labels=tuple(labels),
    )


def _check_unique_ids(items: Sequence[GenerationItem], source: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"{source}: duplicate id '{item.id}'")
        seen.add(item.id)


def _first_per_task(items: Sequence[GenerationItem], per_task: int) -> list[GenerationItem]:
    if per_task < 0:
        raise ValueError(f"per_task must be >= 0, got {per_task}")
    counts: dict[str, int] = {}
    kept: list[GenerationItem] = []
    for item in items:
        if counts.get(item.task, 0) < per_task:
            counts[item.task] = counts.get(item.task, 0) + 1
            kept.append(item)
    return kept
