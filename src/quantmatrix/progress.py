"""One look for every long step, and the one progress interface the pipeline's phases report to.

:class:`Reporter` is what a phase is given: it starts a phase with a total, advances it, and
says a line. :class:`RichReporter` draws rich progress bars (counts, elapsed time, ETA) on
stderr; :class:`LineReporter` writes one plain line per phase and per news line (``run
--progress lines``: logs, scripts, the kill campaign); :data:`SILENT` says nothing (tests,
library use, ``--quiet``).
"""

from __future__ import annotations

import sys
import time
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def make_progress(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


class Reporter(Protocol):
    def phase(self, name: str, total: int) -> None:
        """A step of ``total`` units starts (the previous one, if any, is over)."""
        ...

    def advance(self, units: int = 1) -> None:
        """``units`` more of the current step are done."""
        ...

    def say(self, line: str) -> None:
        """One line of news, printed above the bars."""
        ...


class SilentReporter:
    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, units: int = 1) -> None:
        pass

    def say(self, line: str) -> None:
        pass


SILENT = SilentReporter()


class RichReporter:
    """Rich bars on stderr, one per phase; use it as a context manager around the run."""

    def __init__(self) -> None:
        self._progress = make_progress(True)
        self._task: TaskID | None = None

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def phase(self, name: str, total: int) -> None:
        self._task = self._progress.add_task(name, total=total)

    def advance(self, units: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, units)

    def say(self, line: str) -> None:
        self._progress.console.print(line, highlight=False)


class LineReporter:
    """One plain line on stderr per phase start (``[phase] NAME (TOTAL)``) and per news line,
    flushed at once, with the seconds since the run began: readable in a log file, where rich's
    bars show nothing until they stop, and easy for a script to follow."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def _line(self, text: str) -> None:
        print(f"{time.monotonic() - self._started:8.1f}s {text}", file=sys.stderr, flush=True)

    def phase(self, name: str, total: int) -> None:
        self._line(f"[phase] {name} ({total})")

    def advance(self, units: int = 1) -> None:
        pass

    def say(self, line: str) -> None:
        self._line(line)
