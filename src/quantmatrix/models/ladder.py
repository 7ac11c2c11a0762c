"""The quant ladder: each level built from the source with llama.cpp's own quantizer.

Files are cached by (source SHA-256, level) under ``cache/ladder``. When the source is already
quantized, F16 is built first and every lower level is built from that F16 reconstruction.
Each file is written under a temporary name and renamed when whole, so a kill leaves no half file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from quantmatrix.levels import check_level
from quantmatrix.models.gguf_info import GGUFInfo, read_info
from quantmatrix.models.sources import ResolvedSource

FLOAT_TYPES = {"F32", "F16", "BF16"}


class QuantizeError(RuntimeError):
    """llama.cpp's quantizer refused or failed."""


@dataclass(frozen=True)
class Variant:
    model: str
    level: str
    path: Path | None  # None for backends that hold their own weights (fake, servers)
    info: GGUFInfo | None
    source_sha256: str
    source_type: str  # the source file's own precision, e.g. Q4_K_M
    reconstructed: bool  # built upward from a lower-precision source (not original weights)

    @property
    def id(self) -> str:
        return f"{self.model}@{self.level}"


@contextlib.contextmanager
def _engine_output_to(log_path: Path) -> Iterator[None]:
    """Send llama.cpp's own per-tensor chatter (C-level stdout/stderr) to a log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_path.open("wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def quantize_file(src: Path, dst: Path, level: str, threads: int) -> None:
    """One call of ``llama_model_quantize`` (requantizing allowed), written atomically."""
    import llama_cpp

    spec = check_level(level)
    if spec.needs_imatrix:
        raise QuantizeError(f"level {level} needs an importance matrix, which is not supported yet")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(
        llama_cpp, f"LLAMA_FTYPE_{'' if spec.ftype == 'ALL_F32' else 'MOSTLY_'}{spec.ftype}"
    )
    params.allow_requantize = True
    params.nthread = threads
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".partial")
    with _engine_output_to(dst.with_suffix(".quantize.log")):
        rc = llama_cpp.llama_model_quantize(
            str(src).encode(), str(tmp).encode(), ctypes.byref(params)
        )
    if rc != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise QuantizeError(f"llama.cpp could not quantize {src.name} to {level} (code {rc})")
    os.replace(tmp, dst)


def ladder_dir(cache: Path, source: ResolvedSource) -> Path:
    return cache / "ladder" / source.sha256[:16]


def build_level(
    source: ResolvedSource,
    level: str,
    cache: Path,
    threads: int,
    on_build: Callable[[str], None] | None = None,
) -> Variant:
    """Return the variant file for ``level``, building it (and F16 first) when missing."""
    src_type = source.info.file_type
    folder = ladder_dir(cache, source)
    if level == src_type:
        path = source.path
    else:
        path = folder / f"{level}.gguf"
        if not path.exists():
            parent = source.path
            if src_type not in FLOAT_TYPES and level != "F16":
                parent = folder / "F16.gguf"
                build_level(source, "F16", cache, threads, on_build)
            if on_build:
                on_build(level)
            quantize_file(parent, path, level, threads)
    reconstructed = src_type not in FLOAT_TYPES and check_level(level).bits > _source_bits(source)
    return Variant(
        model=source.name,
        level=level,
        path=path,
        info=read_info(path),
        source_sha256=source.sha256,
        source_type=src_type,
        reconstructed=reconstructed,
    )


def _source_bits(source: ResolvedSource) -> float:
    try:
        return check_level(source.info.file_type).bits
    except ValueError:
        return source.info.bits_per_weight


def build_ladder_files(
    source: Path, levels: list[str], out: Path, threads: int | None = None
) -> list[tuple[Path, GGUFInfo]]:
    """``quantmatrix quantize``: write ``out/<stem>-<LEVEL>.gguf`` for each level."""
    threads = threads or os.cpu_count() or 1
    for level in levels:
        check_level(level)
    src_info = read_info(source)
    parent = source
    if src_info.file_type not in FLOAT_TYPES and any(lv != "F16" for lv in levels):
        parent = out / f"{source.stem}-F16.gguf"
        if not parent.exists():
            quantize_file(source, parent, "F16", threads)
    built = []
    for level in levels:
        path = out / f"{source.stem}-{level}.gguf"
        if not path.exists():
            quantize_file(source if level == "F16" else parent, path, level, threads)
        built.append((path, read_info(path)))
    return built
