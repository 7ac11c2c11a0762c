"""The packaged generation task set and its loader (quantmatrix.data.generation)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from quantmatrix.data.generation import TASKS, GenerationItem, load_generation_items


@pytest.fixture(scope="module")
def items() -> list[GenerationItem]:
    return load_generation_items()


def test_packaged_set_has_250_items_50_per_task(items: list[GenerationItem]) -> None:
    assert len(items) == 250
    assert Counter(item.task for item in items) == dict.fromkeys(TASKS, 50)


def test_ids_are_unique_and_named_after_their_task(items: list[GenerationItem]) -> None:
    assert len({item.id for item in items}) == len(items)
    for item in items:
        assert item.id.startswith(f"{item.task}-")


def test_classification_references_are_among_labels(items: list[GenerationItem]) -> None:
    classification = [item for item in items if item.task == "classification"]
    assert classification
    for item in classification:
        assert len(item.labels) >= 2
        assert item.reference in item.labels
        for label in item.labels:
            assert label in item.prompt


def test_other_tasks_have_no_labels(items: list[GenerationItem]) -> None:
    assert all(not item.labels for item in items if item.task != "classification")


def test_references_are_short_and_prompts_present(items: list[GenerationItem]) -> None:
    for item in items:
        assert item.prompt.strip() and item.reference.strip()
        assert len(item.reference.split()) <= 80, item.id


def test_summarization_paragraphs_are_60_to_120_words(items: list[GenerationItem]) -> None:
    for item in (i for i in items if i.task == "summarization"):
        paragraph = item.prompt.split("\n\n", 1)[1]
        assert 60 <= len(paragraph.split()) <= 120, item.id


def test_code_references_define_a_function(items: list[GenerationItem]) -> None:
    for item in (i for i in items if i.task == "code_generation"):
        namespace: dict[str, object] = {}
        exec(compile(item.reference, item.id, "exec"), namespace)
        assert any(callable(v) for k, v in namespace.items() if not k.startswith("__"))


def test_per_task_selection_is_deterministic() -> None:
    first = load_generation_items(per_task=3)
    assert first == load_generation_items(per_task=3)
    assert len(first) == 3 * len(TASKS)
    assert [i.id for i in first if i.task == "qa"] == ["qa-001", "qa-002", "qa-003"]


def test_task_filter_and_order() -> None:
    chosen = load_generation_items(tasks=["classification", "qa"], per_task=2)
    assert [i.id for i in chosen] == [
        "qa-001",
        "qa-002",
        "classification-001",
        "classification-002",
    ]
    with pytest.raises(ValueError, match="no items for task"):
        load_generation_items(tasks=["poetry"])


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_local_jsonl_source(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"id": "b", "task": "qa", "prompt": "2+2?", "reference": "4", "version": 1},
        {"id": "a", "task": "qa", "prompt": "Capital of France?", "reference": "Paris"},
        {
            "id": "c",
            "task": "classification",
            "prompt": "Sentiment of 'great'?",
            "reference": "positive",
            "labels": ["positive", "negative"],
        },
    ]
    loaded = load_generation_items(_write(tmp_path / "mine.jsonl", rows))
    assert [i.id for i in loaded] == ["a", "b", "c"]
    assert loaded[2] == GenerationItem(
        "c", "classification", "Sentiment of 'great'?", "positive", ("positive", "negative")
    )
    assert load_generation_items(tmp_path / "mine.jsonl", per_task=1)[0].id == "a"


def test_missing_field_names_line_and_field(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"id": "a", "task": "qa", "prompt": "p", "reference": "r"},
        {"id": "b", "task": "qa", "prompt": "p"},
    ]
    with pytest.raises(ValueError) as err:
        load_generation_items(_write(tmp_path / "bad.jsonl", rows))
    message = str(err.value)
    assert "line 2" in message and "'reference'" in message
    assert "\n" not in message


def test_invalid_json_and_wrong_types(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "task": "qa", "prompt": "p", "reference": "r"}\n{oops\n')
    with pytest.raises(ValueError, match="line 2: invalid JSON"):
        load_generation_items(bad)
    bad.write_text('{"id": "a", "task": "qa", "prompt": "p", "reference": 4}\n')
    with pytest.raises(ValueError, match="line 1: field 'reference' must be a string"):
        load_generation_items(bad)
    bad.write_text('{"id": "a", "task": "qa", "prompt": "p", "reference": "r", "labels": "x"}\n')
    with pytest.raises(ValueError, match="line 1: field 'labels'"):
        load_generation_items(bad)


def test_duplicate_ids_rejected(tmp_path: Path) -> None:
    row: dict[str, object] = {"id": "a", "task": "qa", "prompt": "p", "reference": "r"}
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        load_generation_items(_write(tmp_path / "dup.jsonl", [row, row]))
