"""What must hold across the rows of a run-log file, beyond each row's own SHA-256.

Each file holds one row per key:

- ``samples.jsonl``: (variant, task, item)
- ``variants.jsonl``: (variant, session): one row per variant per session of ``quantmatrix
  run`` (a variant resumed in a later session gets a second row, and the analysis adds up the
  sessions' timing totals). Rows written before sessions were recorded have no ``session``; their
  key is their SHA-256, so there only a byte-identical copy counts as a duplicate.
- ``scores.jsonl``: (variant, task, item, against)
- ``kld.jsonl``: (variant, corpus_sha256, chunk)

Every row belongs to the run of its folder: its ``variant`` is one of ``manifest.json``'s
variants, and its ``config`` (the study's config hash, which rows carry since it was added;
older rows have none and are accepted) is the manifest's ``config_hash``. Every row's ``schema``
is a version this code reads (``migrate.known_schemas``).

:func:`load_rows` is how every reader (analysis and resume) gets a file's rows, typed
(``rows.py``, older versions migrated): the first row of each key is kept; an identical later
copy (a double append, a botched merge) is ignored with one warning for the file; a
conflicting one (same key, other content) stops with :class:`LogIntegrityError`, as does a row
of an unknown schema version or one that is not of its file's row type; rows of another run
are ignored with a warning. ``quantmatrix verify`` reports each of these by line number, and
:func:`repair_file` (``verify --repair``) rewrites a file without the duplicates and the rows of
another run, keeping the old file beside it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from quantmatrix.runlog.files import (
    MANIFEST,
    VARIANTS,
    LineProblem,
    LogIntegrityError,
    ReadResult,
    read_rows,
)
from quantmatrix.runlog.migrate import known_schemas, parse
from quantmatrix.runlog.rows import ROW_TYPES, Key, LogRow

Row = dict[str, Any]
R = TypeVar("R", bound=LogRow)

__all__ = ["LogIntegrityError", "check_file", "load_rows", "repair_file", "violations"]


def row_key(name: str, row: Row) -> Key:
    """A stored row's key: its row type's key fields (``rows.py``). A variants row written
    before sessions were recorded has no ``session``; its SHA-256 stands in."""
    if name == VARIANTS and "session" not in row:
        return (row.get("variant"), row.get("sha256"))
    return tuple(row.get(part) for part in ROW_TYPES[name].KEY)


def key_text(key: Key) -> str:
    return "(" + ", ".join(str(part) for part in key) + ")"


@dataclass(frozen=True)
class Duplicate:
    key: Key
    first: int  # line of the row that is kept
    line: int  # line of the later row with the same key
    identical: bool


@dataclass(frozen=True)
class FileCheck:
    """One file's rows sorted out: kept (first of each key), duplicates, foreign, unknown."""

    name: str
    rows: list[Row] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    foreign: list[LineProblem] = field(default_factory=list)
    unknown_schema: list[LineProblem] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Duplicate]:
        return [d for d in self.duplicates if not d.identical]

    @property
    def removable(self) -> list[int]:
        """Lines ``verify --repair`` drops: later duplicates and rows of another run."""
        return sorted({d.line for d in self.duplicates} | {p.line for p in self.foreign})


def foreign_problem(row: Row, manifest: dict[str, Any] | None) -> str | None:
    """Why the row is not of the manifest's run, or None (always None without a manifest)."""
    if manifest is None:
        return None
    variants = manifest.get("variants")
    if variants is not None and row.get("variant") not in variants:
        return f"variant {row.get('variant')!r} is not in this run's {MANIFEST}"
    config, own = row.get("config"), manifest.get("config_hash")
    if config is not None and config != own:
        return f"config hash {str(config)[:12]} is not this run's ({str(own)[:12]})"
    return None


def check_file(name: str, read: ReadResult, manifest: dict[str, Any] | None) -> FileCheck:
    """Sort the rows read from one file (``read.lines`` gives their line numbers)."""
    check = FileCheck(name)
    readable = known_schemas(name)
    seen: dict[Key, tuple[int, str]] = {}
    for line, row in zip(read.lines, read.rows, strict=True):
        schema = row.get("schema")
        if schema not in readable:
            known = ", ".join(str(v) for v in sorted(readable))
            why = f"schema version {schema!r} is unknown (this quantmatrix reads {known})"
            check.unknown_schema.append(LineProblem(line, why))
            continue
        why_foreign = foreign_problem(row, manifest)
        if why_foreign is not None:
            check.foreign.append(LineProblem(line, why_foreign))
            continue
        key = row_key(name, row)
        if key in seen:
            first, digest = seen[key]
            check.duplicates.append(Duplicate(key, first, line, digest == row["sha256"]))
            continue
        seen[key] = (line, row["sha256"])
        check.rows.append(row)
        check.lines.append(line)
    return check


def _some(items: list[str], limit: int = 3) -> str:
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")


def refusal(check: FileCheck, run_dir: Path) -> str | None:
    """The one line a reader stops with, or None when the file can be read."""
    if check.unknown_schema:
        p = check.unknown_schema[0]
        return (
            f"{check.name}:{p.line}: {p.problem}; read this run with the quantmatrix that "
            "wrote it, or a newer one"
        )
    if check.conflicts:
        d = check.conflicts[0]
        return (
            f"{check.name}: lines {d.first} and {d.line} are two different rows for "
            f"{key_text(d.key)}; run quantmatrix verify --repair {run_dir} to keep line "
            f"{d.first} (the old file is kept beside it)"
        )
    return None


def read_warnings(check: FileCheck) -> list[str]:
    """What a reader ignored: identical duplicates and rows of another run, one line each.

    No path in them: they go into ``analysis.json``, which must not depend on where the run is.
    """
    fix = "quantmatrix verify --repair on the run folder removes them"
    found = []
    pairs = [f"line {d.line} repeats line {d.first}" for d in check.duplicates if d.identical]
    if pairs:
        found.append(f"{check.name}: {len(pairs)} duplicate row(s) ignored ({_some(pairs)}); {fix}")
    if check.foreign:
        why = [f"line {p.line}: {p.problem}" for p in check.foreign]
        found.append(
            f"{check.name}: {len(why)} row(s) of another run ignored ({_some(why)}); {fix}"
        )
    return found


@dataclass(frozen=True)
class Loaded(Generic[R]):
    rows: list[R]
    warnings: list[str]


def load_rows(run_dir: Path, row_type: type[R], manifest: dict[str, Any] | None) -> Loaded[R]:
    """A file's typed rows for analysis or resume: each key once, rows of this run only, older
    versions migrated.

    Raises :class:`LogIntegrityError` for a conflicting duplicate, an unknown schema version or
    a row that is not of its type.
    """
    name = row_type.FILE
    check = check_file(name, read_rows(run_dir / name), manifest)
    stop = refusal(check, run_dir)
    if stop is not None:
        raise LogIntegrityError(stop)
    typed = [parse(row_type, line, row) for line, row in zip(check.lines, check.rows, strict=True)]
    return Loaded(typed, read_warnings(check))


def violations(check: FileCheck) -> list[LineProblem]:
    """Every log-level violation of one file, by line number (for ``quantmatrix verify``)."""
    found = list(check.unknown_schema)
    found += [LineProblem(p.line, f"row of another run: {p.problem}") for p in check.foreign]
    for d in check.duplicates:
        what = "an identical copy" if d.identical else "a different row"
        found.append(
            LineProblem(d.line, f"{what} for {key_text(d.key)}, already at line {d.first}")
        )
    return found


@dataclass(frozen=True)
class Repaired:
    name: str
    removed: list[int]
    kept_as: Path


def _free(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}-{n}")
        n += 1
    return candidate


def repair_file(
    run_dir: Path, name: str, manifest: dict[str, Any] | None, stamp: str
) -> Repaired | None:
    """Drop the later duplicates and the rows of another run from one file, or return None.

    Every other line stays byte for byte (rows with a bad SHA-256 or an unknown schema version
    too). The new file is written beside the old one and fsynced; the old one is kept as
    ``NAME.before-repair-STAMP`` (a hard link where the file system allows it, else a copy), and
    the new one is renamed over it atomically.
    """
    path = run_dir / name
    drop = set(check_file(name, read_rows(path), manifest).removable)
    if not drop:
        return None
    pieces = path.read_bytes().split(b"\n")  # numbered as read_rows numbers them
    kept = [raw for number, raw in enumerate(pieces, start=1) if number not in drop]
    tmp = path.with_name(f"{name}.repair-tmp")
    with tmp.open("wb") as fh:
        fh.write(b"\n".join(kept))
        fh.flush()
        os.fsync(fh.fileno())
    backup = _free(path.with_name(f"{name}.before-repair-{stamp}"))
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    os.replace(tmp, path)
    _fsync_dir(run_dir)
    return Repaired(name, sorted(drop), backup)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
