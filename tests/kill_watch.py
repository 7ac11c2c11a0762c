"""One attempt of a study run, followed from outside and maybe killed: what the kill campaign
(tests/kill_campaign.py) sees of a run.

The run is ``python -m quantmatrix run STUDY --out DIR --cache CACHE --progress lines`` in a
session of its own (so SIGKILL to its process group reaches the engine probe's and the
converter's children too). A :class:`Watch` reads its stderr lines (one per phase, see
``progress.LineReporter``) and polls, every :data:`POLL_S`, the complete rows of each log file
and the files of the ladder cache. A :class:`Trigger` says when to kill: a number of rows of
a file, a ladder file appearing, a progress line, or a time since the start, each plus a
delay.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from quantmatrix.runlog import LOG_FILES

POLL_S = 0.02
LINE = re.compile(r"^\s*[\d.]+s (.*)$")


@dataclass(frozen=True)
class Snapshot:
    """What the run folder and the cache hold at one moment."""

    t: float
    rows: dict[str, int]  # complete rows per log file
    ladder: frozenset[str]  # file names under the cache's ladder folders


def count_rows(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def snapshot(out: Path, cache: Path, t: float) -> Snapshot:
    rows = {name: count_rows(out / name) for name in LOG_FILES}
    ladder = cache / "ladder"
    names = frozenset(p.name for p in ladder.glob("*/*")) if ladder.exists() else frozenset()
    return Snapshot(t, rows, names)


@dataclass(frozen=True)
class Trigger:
    """When to kill: ``kind`` rows (``target`` a log file, at ``count`` rows and at least one
        row more than the attempt started with), file (a ladder file named ``target`` written in
    this attempt),
        line (a progress line holding ``target``, and ``count`` rows of ``needs`` when given), or
        time (since the start); then ``delay_s`` more."""

    kind: str
    target: str = ""
    count: int = 0
    needs: str = ""
    delay_s: float = 0.0


@dataclass
class Attempt:
    """One run of the command: killed (at ``killed_at``, after ``lines``) or ended (``rc``)."""

    rc: int | None = None
    killed_at: Snapshot | None = None
    lines: list[tuple[float, str]] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)  # every change seen (reference)
    wall_s: float = 0.0
    stderr_tail: str = ""

    @property
    def killed(self) -> bool:
        return self.killed_at is not None


class Watch:
    """Runs ``cmd`` and follows it; :meth:`run` returns when it ended or was killed."""

    def __init__(self, cmd: list[str], env: dict[str, str], out: Path, cache: Path) -> None:
        self.cmd, self.env, self.out, self.cache = cmd, env, out, cache
        self.lines: list[tuple[float, str]] = []
        self._raw: list[str] = []
        self._started_wall = 0.0

    def _read(self, proc: subprocess.Popen[bytes], started: float) -> None:
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            text = raw.decode(errors="replace").rstrip("\n")
            self._raw.append(text)
            match = LINE.match(text)
            if match:
                self.lines.append((time.monotonic() - started, match.group(1)))

    def run(self, trigger: Trigger | None, timeout_s: float, record: bool = False) -> Attempt:
        started, self._started_wall = time.monotonic(), time.time()
        first = snapshot(self.out, self.cache, 0.0)
        proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        reader = threading.Thread(target=self._read, args=(proc, started), daemon=True)
        reader.start()
        attempt = Attempt(snapshots=[first] if record else [])
        armed: float | None = None
        try:
            while proc.poll() is None:
                now = time.monotonic() - started
                if now > timeout_s:
                    raise TimeoutError(f"{' '.join(self.cmd)} ran past {timeout_s:g} s")
                state = snapshot(self.out, self.cache, now)
                if record and _changed(attempt.snapshots[-1], state):
                    attempt.snapshots.append(state)
                if trigger is not None and armed is None and self._due(trigger, first, state):
                    armed = now + trigger.delay_s
                if armed is not None and now >= armed:
                    kill_group(proc)
                    attempt.killed_at = snapshot(self.out, self.cache, now)
                    break
                time.sleep(POLL_S)
        finally:
            kill_group(proc)
            reader.join(timeout=10)
        attempt.rc = None if attempt.killed else proc.returncode
        attempt.lines = list(self.lines)
        attempt.wall_s = time.monotonic() - started
        attempt.stderr_tail = "\n".join(self._raw[-30:])
        return attempt

    def _due(self, trigger: Trigger, first: Snapshot, state: Snapshot) -> bool:
        if trigger.kind == "time":
            return True
        if trigger.kind == "rows":
            at_least = max(trigger.count, first.rows[trigger.target] + 1)
            return state.rows[trigger.target] >= at_least
        if trigger.kind == "file":  # written in this attempt (a kill leaves its file behind)
            found = (self.cache / "ladder").glob(f"*/{trigger.target}")
            return any(_mtime(p) >= self._started_wall for p in found)
        if trigger.kind == "line":
            seen = any(trigger.target in text for _, text in self.lines)
            return seen and (not trigger.needs or state.rows[trigger.needs] >= trigger.count)
        raise ValueError(f"unknown trigger kind {trigger.kind!r}")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _changed(a: Snapshot, b: Snapshot) -> bool:
    return a.rows != b.rows or a.ladder != b.ladder


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the run's whole process group (it leads a session of its own), then reap."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
