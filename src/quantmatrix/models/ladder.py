"""The quant ladder: each level built from the source with llama.cpp's own quantizer.

Files are cached by (source SHA-256, level) under ``cache/ladder``. When the source is already
quantized, F16 is built first and every lower level is built from that F16 reconstruction.
Levels built with an importance matrix (models/imatrix.py) are cached by (source, level,
calibration text) and made by llama.cpp's own tools. Each file is written under a temporary
name and renamed when whole, so a kill leaves no half file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.config import CalibrationSpec, ModelSpec, Study
from quantmatrix.kvcache import DEFAULT_KV, variant_label
from quantmatrix.levels import can_use_imatrix, check_level
from quantmatrix.models.gguf_info import GGUFInfo, read_info
from quantmatrix.models.imatrix import (
    ImatrixError,
    ImatrixPlan,
    calibration,
    ensure_imatrix,
    quantize_with_imatrix,
)
from quantmatrix.models.origin import fileless_origin, origin_of
from quantmatrix.models.sources import FLOAT_TYPES, ResolvedSource


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
    origin: str = ""  # models/origin.py; "" for a variant without a file: from the backend
    source_label: str = ""  # the source as the study file spells it
    imatrix: Mapping[str, Any] | None = None  # the importance matrix it was built with
    sha256: str | None = None  # the file's, once the driver has hashed it (workers check it)
    # the KV-cache type it runs with (kvcache.py); one ladder file serves every type of a level
    kv_cache: str = DEFAULT_KV

    @property
    def label(self) -> str:
        """The level, marked ``+kv-TYPE`` for a KV cache other than f16 (the rows' ``level``)."""
        return variant_label(self.level, self.kv_cache)

    @property
    def id(self) -> str:
        return f"{self.model}@{self.label}"

    def log_fields(self) -> dict[str, Any]:
        """What the variants log keeps about where the weights came from."""
        kind = self.origin or fileless_origin(self.source_type)
        label = self.source_label or (self.source_sha256 if self.path is None else "")
        return {"origin": kind, "source": label, "imatrix": dict(self.imatrix or {}) or None}


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
    if spec.needs_imatrix or spec.imatrix:
        raise QuantizeError(
            f"level {level} needs an importance matrix: list it as {spec.base}-imat, or set "
            "imatrix: true for the model"
        )
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
        log = dst.with_suffix(".quantize.log").read_text(errors="replace")
        if "requires an imatrix" in log or "requires an importance matrix" in log:
            raise QuantizeError(
                f"llama.cpp needs an importance matrix for {level} on {src.name}: list it as "
                f"{level}-imat, or set imatrix: true for the model"
            )
        raise QuantizeError(f"llama.cpp could not quantize {src.name} to {level} (code {rc})")
    os.replace(tmp, dst)


# the end of the one line for a corrupt level file in the cache
CACHED_FIX = "it is a cached level: delete it and rerun, and quantmatrix builds it again"


def ladder_dir(cache: Path, source: ResolvedSource) -> Path:
    return cache / "ladder" / source.sha256[:16]


def _float_parent(
    source: ResolvedSource, cache: Path, threads: int, on_build: Callable[[str], None] | None
) -> Path:
    """The file lower levels are built from: the source itself when float, else its F16."""
    if source.info.file_type in FLOAT_TYPES:
        return source.path
    return _plain_level(source, "F16", cache, threads, on_build)


def _plain_level(
    source: ResolvedSource,
    level: str,
    cache: Path,
    threads: int,
    on_build: Callable[[str], None] | None,
) -> Path:
    if level == source.info.file_type:
        return source.path
    path = ladder_dir(cache, source) / f"{level}.gguf"
    if not path.exists():
        parent = source.path if level == "F16" else _float_parent(source, cache, threads, on_build)
        if on_build:
            on_build(level)
        quantize_file(parent, path, level, threads)
    return path


def _imatrix_level(
    source: ResolvedSource,
    level: str,
    plan: ImatrixPlan,
    cache: Path,
    on_build: Callable[[str], None] | None,
) -> tuple[Path, dict[str, Any]]:
    base = check_level(level).base
    parent = _float_parent(source, cache, plan.threads, on_build)
    matrix = ensure_imatrix(parent, source.sha256, plan, cache)
    record = {"file": matrix.name, "context": plan.context, **plan.calibration.as_dict()}
    tag = f"{plan.calibration.sha256[:12]}-c{plan.context}"  # the matrix's own key
    path = ladder_dir(cache, source) / f"{base}-imat-{tag}.gguf"
    if not path.exists():
        if on_build:
            on_build(level)
        quantize_with_imatrix(parent, path, base, matrix, plan.threads)
    return path, record


def imatrix_plan(spec: ModelSpec, study: Study, threads: int) -> ImatrixPlan | None:
    """How this model's importance matrix is made, when any of its levels uses one."""
    if spec.backend != "llamacpp" or not spec.uses_imatrix:
        return None
    cal = study.calibration or CalibrationSpec()
    try:
        text = calibration(cal.text)
    except ImatrixError as exc:
        raise QuantizeError(f"model {spec.name!r}: {exc}") from None
    return ImatrixPlan(text, all_levels=bool(spec.imatrix), context=cal.context, threads=threads)


def uses_imatrix(level: str, plan: ImatrixPlan | None) -> bool:
    """A level built with the plan's matrix: marked -imat, or any that can under imatrix: true."""
    if plan is None or not can_use_imatrix(level):
        return False
    return check_level(level).imatrix or plan.all_levels


def build_level(
    source: ResolvedSource,
    level: str,
    cache: Path,
    threads: int,
    on_build: Callable[[str], None] | None = None,
    imatrix: ImatrixPlan | None = None,
) -> Variant:
    """Return the variant file for ``level``, building it (and F16 first) when missing."""
    record: dict[str, Any] | None = None
    if uses_imatrix(level, imatrix) and imatrix is not None:
        try:
            path, record = _imatrix_level(source, level, imatrix, cache, on_build)
        except ImatrixError as exc:
            raise QuantizeError(f"model {source.name!r}: {exc}") from None
    else:
        path = _plain_level(source, level, cache, threads, on_build)
    base = check_level(level).base
    reconstructed = not source.original and (
        check_level(base).bits > _source_bits(source) or source.quantized_from is not None
    )
    return Variant(
        model=source.name,
        level=level,
        path=path,
        info=read_info(path) if path == source.path else read_info(path, fix=CACHED_FIX),
        source_sha256=source.sha256,
        source_type=source.precision,
        reconstructed=reconstructed,
        origin=origin_of(source.original, source.info.file_type, base, reconstructed),
        source_label=str(source.provenance.get("spelling") or source.path),
        imatrix=record,
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
