from __future__ import annotations

import json
from pathlib import Path

from quantmatrix.runlog import AppendLog, read_rows, row_digest


def test_rows_are_sealed_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    with AppendLog(path) as log:
        log.append({"a": 1, "text": "é"})
        log.append({"a": 2})
    result = read_rows(path)
    assert [r["a"] for r in result.rows] == [1, 2]
    assert all(r["schema"] == 1 and r["sha256"] == row_digest(r) for r in result.rows)
    assert not result.problems and not result.torn_tail


def test_tampered_row_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    with AppendLog(path) as log:
        for i in range(3):
            log.append({"a": i})
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    row["a"] = 99
    lines[1] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    result = read_rows(path)
    assert [p.line for p in result.problems] == [2]
    assert [r["a"] for r in result.rows] == [0, 2]


def test_torn_tail_is_ignored_then_cut_before_append(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    with AppendLog(path) as log:
        log.append({"a": 1})
    with path.open("ab") as fh:
        fh.write(b'{"a": 2, "sha')
    result = read_rows(path)
    assert result.torn_tail and [r["a"] for r in result.rows] == [1]
    with AppendLog(path) as log:
        log.append({"a": 3})
    result = read_rows(path)
    assert not result.torn_tail and not result.problems
    assert [r["a"] for r in result.rows] == [1, 3]
