"""Older rows brought up to the current version on read, then parsed into their typed row.

Each file's rows carry ``schema``; :data:`STEPS` holds, per file, one function per version that
turns a row of that version into the next. A version with no step and that is not the current
one is unknown: ``check.py`` refuses it with one line naming the file, line and version. The
SHA-256 is checked before any of this, over the row as it was written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from quantmatrix.runlog.files import (
    DETERMINISM,
    KLD,
    LONG_CONTEXT,
    MEMORY,
    SAMPLES,
    SCORES,
    TIMING,
    VARIANTS,
    LogIntegrityError,
)
from quantmatrix.runlog.rows import ROW_TYPES, LogRow

Row = dict[str, Any]
Step = Callable[[Row], Row]
R = TypeVar("R", bound=LogRow)


def _sample_1_to_2(row: Row) -> Row:
    """Version 1 sample rows: the task kind was told by the inputs' keys (generation inputs hold
    the reference), and multiple-choice rows carried write-time ``scores`` no reader used."""
    body = {k: v for k, v in row.items() if k != "scores"}
    body["task_kind"] = "generation" if "reference" in row["input"] else "multiple_choice"
    body["schema"] = 2
    return body


def _variant_1_to_2(row: Row) -> Row:
    """Version 1 variant rows did not say where the weights came from: origin unknown."""
    return {**row, "origin": None, "source": None, "imatrix": None, "schema": 2}


def _timing_1_to_2(row: Row) -> Row:
    """Version 1 timing rows did not keep a multiple-choice reply's letter probabilities."""
    return {**row, "letters": None, "schema": 2}


STEPS: dict[str, dict[int, Step]] = {
    SAMPLES: {1: _sample_1_to_2},
    VARIANTS: {1: _variant_1_to_2},
    SCORES: {},
    KLD: {},
    TIMING: {1: _timing_1_to_2},
    DETERMINISM: {},
    MEMORY: {},
    LONG_CONTEXT: {},
}


def known_schemas(name: str) -> frozenset[int]:
    """The versions this code reads in file ``name``: the current one and those it migrates."""
    return frozenset({ROW_TYPES[name].SCHEMA, *STEPS[name]})


def migrate(name: str, row: Row) -> Row:
    """The row at its file's current version (``row["schema"]`` must be known)."""
    current = ROW_TYPES[name].SCHEMA
    while row.get("schema") != current:
        row = STEPS[name][row["schema"]](row)
    return row


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "row"
    return f"{where}: {err['msg']}"


def parse(row_type: type[R], line: int, row: Row) -> R:
    """The typed row of one line (of a known version), or one line naming what is wrong."""
    name = row_type.FILE
    body = {k: v for k, v in migrate(name, row).items() if k != "sha256"}
    try:
        return row_type.model_validate(body)
    except ValidationError as exc:
        raise LogIntegrityError(
            f"{name}:{line}: not a {row_type.__name__} of schema version {row_type.SCHEMA} "
            f"({_first_error(exc)}); it was not written by quantmatrix"
        ) from None
