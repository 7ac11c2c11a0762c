"""Writing a run folder's files safely: whole-or-nothing replacement, and one line on failure.

Every file a command rewrites (``manifest.json``, ``analysis.json``, ``report.md``,
``report.html``, the plots) goes through :func:`write_atomic`: written to a temporary name in
the same folder, fsynced, then renamed over the old one, so a full disk or a kill leaves the
old file whole and no half-written one. A write the system refuses (no space left, a quota, a
read-only file system, no permission) becomes :class:`WriteFailed`, whose message is one line
naming the file and what to do; rows already in the run log are kept.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# errno -> (what happened, what to do)
_WHY: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", "free space and rerun the same command"),
    errno.EDQUOT: ("disk quota exceeded", "free space and rerun the same command"),
    errno.EFBIG: ("file too large for its file system", "use another --out and rerun"),
    errno.EROFS: ("read-only file system", "make the folder writable or choose another --out"),
    errno.EACCES: ("permission denied", "make the folder writable or choose another --out"),
    errno.EPERM: ("operation not permitted", "make the folder writable or choose another --out"),
    errno.EIO: ("I/O error", "check the disk, then rerun the same command"),
}


class WriteFailed(RuntimeError):
    """A run-folder write the system refused; ``str()`` is one line with the file and the fix.

    Not an ``OSError``, so no handler meant for a missing or unreadable file swallows it.
    """

    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.errno = code


def write_failed(exc: OSError, path: Path) -> WriteFailed:
    """The one-line error for ``exc`` raised while writing ``path``."""
    what, fix = _WHY.get(exc.errno or 0, (exc.strerror or type(exc).__name__, "rerun"))
    line = f"{what} while writing {path}: {fix}; rows already written are kept"
    return WriteFailed(exc.errno or 0, line)


def write_atomic(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` whole or not at all: what ``fill`` writes goes to a temporary file in the
    same folder (fsynced), which is then renamed over ``path``."""
    buffer = io.BytesIO()
    fill(buffer)
    data = buffer.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")  # one writer per folder (lock.py): one name
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise write_failed(exc, path) from None


def _write_all(fd: int, data: bytes) -> None:
    done = 0
    while done < len(data):
        done += os.write(fd, data[done:])


def make_dirs(folder: Path) -> None:
    """``mkdir -p`` whose refusal is :class:`WriteFailed`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failed(exc, folder) from None


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def append_whole(fd: int, data: bytes, path: Path) -> None:
    """Append ``data`` to the end of ``fd`` and fsync; on failure cut back what was written.

    A short write is continued; if the system refuses the rest (a full disk), the file is
    truncated to where it was, so the log holds no torn line (if even that fails, the torn
    line is cut when the log is next opened) and :class:`WriteFailed` is raised.
    """
    start = os.lseek(fd, 0, os.SEEK_END)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise write_failed(exc, path) from None
