"""Benchmark items from the installed package files and from local files."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quantmatrix.data.benchmarks import DataError, load_arc_challenge, load_local_mc, load_mmlu


def test_mmlu_selection_is_seeded_stable_and_per_subject() -> None:
    five = load_mmlu(per_subject=5, n=None)
    assert len(five) == 57 * 5 and len({i.subject for i in five}) == 57
    one = load_mmlu(per_subject=1, n=None)
    assert {i.id for i in one} <= {i.id for i in five}  # a smaller request keeps its items
    assert [i.id for i in load_mmlu(per_subject=1, n=None)] == [i.id for i in one]
    assert {i.id for i in load_mmlu(None, n=20, seed=7)} != {i.id for i in load_mmlu(None, n=20)}
    assert all(len(i.choices) == 4 and 0 <= i.answer < 4 for i in five)


def test_arc_challenge_test_set_has_all_1172_questions_and_more_than_four_options() -> None:
    arc = load_arc_challenge(None)
    assert len(arc) == 1172 and len({i.id for i in arc}) == 1172
    assert {len(i.choices) for i in arc} == {3, 4, 5}
    assert load_arc_challenge(10) == arc[:10]
    assert not any(i.question.startswith("Question:") for i in arc)


ROWS = [
    {"id": "q1", "question": "2+2?", "choices": ["3", "4", "5"], "answer": 1},
    {"id": "q2", "question": "Sky?", "choices": ["blue", "green"], "answer": "A"},
]


def test_local_jsonl_csv_and_parquet_give_the_same_items(tmp_path: Path) -> None:
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    csv = tmp_path / "t.csv"
    csv.write_text(
        'id,question,choices,answer\nq1,2+2?,"[""3"",""4"",""5""]",1\n'
        'q2,Sky?,"[""blue"",""green""]",A\n'
    )
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "answer": str(r["answer"])} for r in ROWS]), parquet)
    loaded = [
        sorted(load_local_mc(p, "mine", None), key=lambda i: i.id) for p in (jsonl, csv, parquet)
    ]
    assert loaded[0] == loaded[1] == loaded[2]
    assert [i.gold_letter for i in loaded[0]] == ["B", "A"]


def test_local_file_errors_name_the_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "x", "choices": ["a", "b"]}) + "\n")
    with pytest.raises(DataError, match=r"row 1: missing field\(s\) answer"):
        load_local_mc(bad, "t", None)
    bad.write_text(json.dumps({"question": "x", "choices": ["a", "b"], "answer": "D"}) + "\n")
    with pytest.raises(DataError, match="outside its 2 choices"):
        load_local_mc(bad, "t", None)
