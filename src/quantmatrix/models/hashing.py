"""The cache folder, and SHA-256 of files remembered by (real path, size, mtime)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def default_cache() -> Path:
    return Path(os.environ.get("QUANTMATRIX_CACHE", Path.home() / ".cache" / "quantmatrix"))


def sha256_file(path: Path, cache: Path | None = None) -> str:
    """SHA-256 of a file, remembered by (real path, size, mtime) in ``cache/hashes.json``."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    book = cache / "hashes.json" if cache else None
    known: dict[str, str] = {}
    if book and book.exists():
        try:
            known = json.loads(book.read_text())
        except json.JSONDecodeError:
            known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    value = digest.hexdigest()
    if book:
        book.parent.mkdir(parents=True, exist_ok=True)
        known[key] = value
        tmp = book.with_name(f"hashes.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        os.replace(tmp, book)
    return value
