"""The run log's files: append-only JSONL with a SHA-256 per row, plus ``manifest.json``.

Each row is flushed and fsynced as it is written. A torn last line (a crash mid-write) is
detected, ignored on read, and cut off before the next append. The SHA-256 is over the canonical
JSON of the row as written (before any migration on read). Rows carry ``config``, the study's
config hash (see :class:`AppendLog`). What the rows are is in ``rows.py``; what must hold across
the rows of a file in ``check.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from quantmatrix.runlog.manifest_check import manifest_problem
from quantmatrix.runlog.writes import append_whole, write_failed, write_text_atomic

PLAIN_SCHEMA = 1  # the version ``seal`` gives a plain mapping that names none (file tests)
SAMPLES = "samples.jsonl"
VARIANTS = "variants.jsonl"
SCORES = "scores.jsonl"
KLD = "kld.jsonl"
TIMING = "timing.jsonl"
DETERMINISM = "determinism.jsonl"
MEMORY = "memory.jsonl"
LONG_CONTEXT = "long_context.jsonl"
MANIFEST = "manifest.json"
LOG_FILES = (SAMPLES, VARIANTS, SCORES, KLD, TIMING, DETERMINISM, MEMORY, LONG_CONTEXT)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_digest(row: dict[str, Any]) -> str:
    body = {k: v for k, v in row.items() if k != "sha256"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def seal(row: Mapping[str, Any]) -> dict[str, Any]:
    """Return the row with its SHA-256 set (and ``schema`` :data:`PLAIN_SCHEMA` if it has none:
    a typed row always names its own)."""
    body = {k: v for k, v in row.items() if k != "sha256"}
    body.setdefault("schema", PLAIN_SCHEMA)
    body["sha256"] = row_digest(body)
    return body


class LogIntegrityError(ValueError):
    """A run log that cannot be read as it is; one line that names the lines and the fix."""


class Writable(Protocol):
    """A typed row (``rows.py``): what it writes is :meth:`as_written`."""

    def as_written(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LineProblem:
    line: int
    problem: str


@dataclass(frozen=True)
class ReadResult:
    rows: list[dict[str, Any]]
    problems: list[LineProblem]
    torn_tail: bool
    lines: list[int] = field(default_factory=list)  # the 1-based line number of each row


def read_rows(path: Path) -> ReadResult:
    """Read every complete row; report bad lines (by 1-based number) and a torn last line."""
    if not path.exists():
        return ReadResult([], [], False)
    data = path.read_bytes()
    torn = bool(data) and not data.endswith(b"\n")
    lines = data.split(b"\n")
    if torn:
        lines = lines[:-1]
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[LineProblem] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            problems.append(LineProblem(number, "not valid JSON"))
            continue
        if not isinstance(row, dict) or row.get("sha256") != row_digest(row):
            problems.append(LineProblem(number, "SHA-256 mismatch (row altered)"))
            continue
        rows.append(row)
        numbers.append(number)
    return ReadResult(rows, problems, torn, numbers)


class AppendLog:
    """An append-only JSONL file; each ``append`` is durable when it returns.

    With ``config`` (the study's config hash, as in ``manifest.json``) every row gets a
    ``config`` field, so a row copied in from another run's folder can be told apart.
    """

    def __init__(self, path: Path, config: str | None = None) -> None:
        self.path = path
        self.config = config
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._cut_torn_tail()
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise write_failed(exc, path) from None

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, row: Writable | Mapping[str, Any]) -> dict[str, Any]:
        """Write one row (a typed row; a plain mapping in the file format's own tests).

        The row is written whole and fsynced, or not at all: a write the disk refuses is cut
        back and raised as :class:`~quantmatrix.runlog.writes.WriteFailed` (one line).
        """
        body = dict(row) if isinstance(row, Mapping) else row.as_written()
        sealed = seal(body if self.config is None else {**body, "config": self.config})
        append_whole(self._fd, (canonical_json(sealed) + "\n").encode("utf-8"), self.path)
        return sealed

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON through a temporary file and a rename, so a crash leaves the old file whole."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_text_atomic(path, text)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """``manifest.json`` of a run folder, or None when there is none.

    Raises :class:`LogIntegrityError` (one line) when it is not a JSON object.
    """
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    try:
        loaded: Any = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogIntegrityError(
            f"{path} is not valid JSON ({exc}); restore it from a backup, or start the run "
            "again in another folder"
        ) from None
    fix = "restore it from a backup, or start the run again in another folder"
    if not isinstance(loaded, dict):
        raise LogIntegrityError(
            f"{path} holds a JSON {type(loaded).__name__}, not the manifest object; {fix}"
        )
    problem = manifest_problem(loaded)
    if problem is not None:
        raise LogIntegrityError(f"{path} is damaged: {problem}; {fix}")
    return loaded
