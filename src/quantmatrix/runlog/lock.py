"""One writer per run folder: ``run.lock``, held by every command that writes the folder.

The lock is an ``fcntl.flock`` on ``run.lock`` in the run folder, which also holds who took it
(PID, host, start time, command line). The kernel releases a flock when its holder dies, even
by ``kill -9``, so a lock left by a dead process is known to be stale without guessing: the
next command takes it over and says so in one warning line. A live holder makes a second
writer stop with one line naming it (:class:`RunInUseError`). Reading commands (``verify``
without ``--repair``, ``recommend``, ``validate``, ``compare``) take no lock.

Holding is re-entrant within one process (``quantmatrix run`` holds the folder for the study
and its report; ``run_study`` takes it again inside), and the file is removed when the
outermost holder lets go. The lock is not a run-log file: ``verify`` never reads it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.runlog.writes import WriteFailed, make_dirs, write_failed

LOCK = "run.lock"
_held: dict[Path, tuple[int, int]] = {}  # folder -> (file descriptor, depth), this process
_guard = threading.Lock()


class RunInUseError(RuntimeError):
    """Another live process holds the run folder; the message names it in one line."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a run folder, as written in its ``run.lock``."""

    pid: int | None
    host: str | None
    started_utc: str | None
    command: str | None

    @classmethod
    def parse(cls, text: str) -> Holder:
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return cls(None, None, None, None)
        pid = data.get("pid")
        return cls(
            pid if isinstance(pid, int) else None,
            _text(data.get("host")),
            _text(data.get("started_utc")),
            _text(data.get("command")),
        )

    def describe(self) -> str:
        who = f"PID {self.pid}" if self.pid is not None else "a process"
        if self.host:
            who += f" on {self.host}"
        if self.started_utc:
            who += f" since {self.started_utc}"
        if self.command:
            who += f" ({self.command})"
        return who


def _text(value: Any) -> str | None:
    return " ".join(value.split()) if isinstance(value, str) else None


def _me() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["quantmatrix", *sys.argv[1:]]),
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refusal(folder: Path, holder: Holder) -> RunInUseError:
    line = f"{folder} is in use by {holder.describe()}"
    if holder.pid is not None and holder.host == socket.gethostname() and not _alive(holder.pid):
        line += f"; PID {holder.pid} is gone but a process it started still holds {LOCK}"
    return RunInUseError(
        f"{line}; wait for it to finish or stop it, then rerun (only one command may write a "
        "run folder at a time)"
    )


def _open_locked(folder: Path) -> int:
    """A descriptor of ``folder/run.lock`` with the flock held (the file as it is named now)."""
    path = folder / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise write_failed(exc, path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = Holder.parse(_read(fd))
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _refusal(folder, holder) from None
            raise write_failed(exc, path) from None
        try:  # a holder that let go removes the file: lock the file the name points to now
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 1 << 16).decode("utf-8", errors="replace")


def _claim(folder: Path, fd: int) -> str | None:
    """Write this process into the held lock file; the warning for a stale holder, or None."""
    before = _read(fd)
    path = folder / LOCK
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(_me(), sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    except OSError as exc:
        raise write_failed(exc, path) from None
    if not before.strip():
        return None
    holder = Holder.parse(before)
    return (
        f"{folder}: took over {LOCK} from {holder.describe()}, which no longer runs (killed or "
        "crashed); the rows it wrote are kept"
    )


@contextmanager
def hold_run_dir(
    folder: Path, warn: list[str] | None = None, create: bool = False
) -> Iterator[None]:
    """Hold ``folder`` for writing (``create``: made if missing); re-entrant in this process.

    Raises :class:`RunInUseError` when another live process holds it, and
    :class:`~quantmatrix.runlog.writes.WriteFailed` when the folder cannot be written (a
    read-only folder, a full disk). A stale lock's takeover is appended to ``warn``. Without
    ``create``, a missing folder is a ``FileNotFoundError`` (one line).
    """
    key = folder.resolve()
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            acquired = False
        else:
            if folder.exists() and not folder.is_dir():
                raise WriteFailed(errno.ENOTDIR, f"{folder} is a file, not a run folder")
            if create:
                make_dirs(folder)
            elif not folder.is_dir():
                raise FileNotFoundError(f"{folder} holds no run (no such folder)")
            fd = _open_locked(folder)
            try:
                note = _claim(folder, fd)
            except WriteFailed:
                os.close(fd)
                raise
            if note and warn is not None:
                warn.append(note)
            _held[key] = (fd, 1)
            acquired = True
    try:
        yield
    finally:
        _let_go(folder, key, acquired)


def _let_go(folder: Path, key: Path, acquired: bool) -> None:
    with _guard:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
        if not acquired:  # pragma: no cover - depth 1 is always the acquiring frame
            return
        # still holding it: an opener waiting on this file re-checks the name; a folder made
        # read-only meanwhile keeps the file, and the flock goes with the descriptor anyway
        with contextlib.suppress(OSError):
            os.unlink(folder / LOCK)
        os.close(fd)


def holder_of(folder: Path) -> Holder | None:
    """Who holds ``folder`` now, or None when no live process does (for messages and tests)."""
    path = folder / LOCK
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return Holder.parse(_read(fd))
    finally:
        os.close(fd)
    return None
