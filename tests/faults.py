"""Disk faults injected under a folder: a disk that fills up after N bytes, or turns read-only.

:class:`DiskFaults` wraps ``os.open``, ``os.write``, ``os.ftruncate`` and ``os.replace`` (the
calls every run-folder write goes through: ``runlog/writes.py``, ``runlog/files.py``,
``runlog/lock.py``) for files under one folder, as the kernel would answer them: a write is
short when the budget runs out and the next one fails with ``ENOSPC``; a read-only folder
refuses opening for writing, writing and renaming with ``EROFS``. Files elsewhere are not
touched. Linux only (file names are read from ``/proc/self/fd``).
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def fd_path(fd: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


class DiskFaults:
    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        folder: Path,
        *,
        budget: int | None = None,
        read_only: bool = False,
        names: tuple[str, ...] = (),
        cut_back_fails: bool = False,
    ) -> None:
        """``budget``: bytes written under ``folder`` before the disk is full (None: no limit);
        ``read_only``: refuse every write there; ``names``: only files with these names (or
        temporary files named after them) count; ``cut_back_fails``: truncating fails too."""
        self.folder = folder.resolve()
        self.left = budget
        self.read_only = read_only
        self.names = names
        self.cut_back_fails = cut_back_fails
        self.refused: Counter[str] = Counter()  # file name -> refused calls
        self._real = {name: getattr(os, name) for name in ("open", "write", "ftruncate", "replace")}
        monkeypatch.setattr(os, "open", self._open)
        monkeypatch.setattr(os, "write", self._write)
        monkeypatch.setattr(os, "ftruncate", self._ftruncate)
        monkeypatch.setattr(os, "replace", self._replace)

    def applies(self, path: Path | None) -> bool:
        if path is None:
            return False
        path = path.resolve() if path.exists() else path.parent.resolve() / path.name
        if not path.is_relative_to(self.folder):
            return False
        return not self.names or any(n in path.name for n in self.names)

    def _refuse(self, path: Path, code: int) -> OSError:
        self.refused[path.name] += 1
        return OSError(code, os.strerror(code), str(path))

    def _open(self, path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if self.read_only and flags & WRITE_FLAGS and self.applies(Path(os.fsdecode(path))):
            raise self._refuse(Path(os.fsdecode(path)), errno.EROFS)
        fd: int = self._real["open"](path, flags, *args, **kwargs)
        return fd

    def _write(self, fd: int, data: bytes) -> int:
        path = fd_path(fd)
        if not self.applies(path):
            written: int = self._real["write"](fd, data)
            return written
        assert path is not None
        if self.read_only:
            raise self._refuse(path, errno.EROFS)
        if self.left is None:
            written = self._real["write"](fd, data)
            return written
        if self.left <= 0:
            raise self._refuse(path, errno.ENOSPC)
        chunk = bytes(data[: self.left])
        written = self._real["write"](fd, chunk)
        self.left -= written
        return written

    def _ftruncate(self, fd: int, length: int) -> None:
        path = fd_path(fd)
        if self.applies(path) and (self.cut_back_fails or self.read_only):
            assert path is not None
            raise self._refuse(path, errno.EROFS if self.read_only else errno.EIO)
        self._real["ftruncate"](fd, length)

    def _replace(self, src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        target = Path(os.fsdecode(dst))
        if self.read_only and self.applies(target):
            raise self._refuse(target, errno.EROFS)
        self._real["replace"](src, dst, *args, **kwargs)

    def free(self) -> None:
        """Space freed / the folder writable again: every call goes through from now on."""
        self.left, self.read_only, self.cut_back_fails = None, False, False
