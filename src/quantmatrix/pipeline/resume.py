"""Resume, one way for every phase: a unit of work is pending unless the log holds its key.

A phase lists its units of work (samples of a variant, corpus chunks, generation pairs), names
each unit's key (the key its row will have, ``rows.py``: the one-row-per-key check uses the
same fields), and asks :func:`pending` which are left. The log is read as every reader reads it
(``runlog.load_rows``): a conflicting duplicate stops the run with one line, and a row of
another run does not count as done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from quantmatrix.runlog import LogRow, load_rows
from quantmatrix.runlog.rows import Key

T = TypeVar("T")


def logged_keys(
    run_dir: Path, row_type: type[LogRow], manifest: dict[str, Any] | None
) -> frozenset[Key]:
    """The keys of the rows of ``row_type`` the run's log already holds."""
    return done_in(load_rows(run_dir, row_type, manifest).rows)


def done_in(rows: Iterable[LogRow]) -> frozenset[Key]:
    return frozenset(row.key for row in rows)


def pending(units: Iterable[T], key: Callable[[T], Key], done: frozenset[Key]) -> list[T]:
    """The units whose key has no row yet, in their order."""
    return [unit for unit in units if key(unit) not in done]


def pending_groups(
    units: Sequence[T], key: Callable[[T], Key], done: frozenset[Key], size: int
) -> list[tuple[int, T]]:
    """(plan index, unit) of every unit in a batch group (``index // size``) that still has a
    pending unit, in plan order: a partly logged group is asked again whole, so its batch
    shapes are those of the first time (``backends/batching.py``); the caller drops the
    results already logged. With ``size`` 1 these are exactly :func:`pending`'s units."""
    size = max(1, size)
    left = {unit_id for unit_id, unit in enumerate(units) if key(unit) not in done}
    open_groups = {i // size for i in left}
    return [(i, unit) for i, unit in enumerate(units) if i // size in open_groups]
