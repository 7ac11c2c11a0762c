"""``manifest.json``: what produced a run (config hash, model files, versions, platform)."""

from __future__ import annotations

import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from quantmatrix import __version__
from quantmatrix.config import Study
from quantmatrix.models.ladder import Variant
from quantmatrix.models.sources import ResolvedSource
from quantmatrix.runlog import (
    DETERMINISM,
    KLD,
    LONG_CONTEXT,
    MANIFEST,
    MEMORY,
    SAMPLES,
    SCORES,
    TIMING,
    VARIANTS,
    LogIntegrityError,
    read_manifest,
    write_json_atomic,
)
from quantmatrix.runlog.writes import make_dirs

_PACKAGES = ("llama-cpp-python", "gguf", "numpy", "scipy", "statsmodels", "pydantic")


class RunDirError(ValueError):
    """An output folder that cannot take this run; one line that says what to do."""


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def new_manifest(study: Study) -> dict[str, Any]:
    return {
        "config_hash": study.config_hash(),
        "config": study.model_dump(mode="json"),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quantmatrix": __version__,
        "packages": _versions(),
        "platform": {
            "python": platform.python_version(),
            "system": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor(),
        },
        "sources": {},
        "variants": {},
    }


def prepare_run_dir(study: Study, out: Path, force_new: bool) -> dict[str, Any]:
    """Open ``out`` for this study: resume a run of the same config, refuse a different one
    (and a damaged ``manifest.json``; ``force_new`` moves either aside)."""
    try:
        existing = read_manifest(out)
    except LogIntegrityError as exc:
        if not force_new:
            raise RunDirError(f"{exc}; or --force-new moves this run aside") from None
        existing = {}  # a run of unknown config: moved aside below
    if existing is None and (out / SAMPLES).exists():
        raise RunDirError(f"{out} holds samples but no {MANIFEST}; choose another --out")
    if existing is not None and existing.get("config_hash") != study.config_hash():
        if not force_new:
            raise RunDirError(
                f"{out} holds a run of a different study config; use another --out, or "
                "--force-new to start over (the old run is moved aside, not deleted)"
            )
        aside = out / f"previous-{time.strftime('%Y%m%dT%H%M%S')}"
        make_dirs(aside)
        for name in (
            MANIFEST,
            SAMPLES,
            VARIANTS,
            SCORES,
            KLD,
            TIMING,
            DETERMINISM,
            MEMORY,
            LONG_CONTEXT,
            "report.md",
            "report.html",
            "analysis.json",
        ):
            if (out / name).exists():
                shutil.move(str(out / name), str(aside / name))
        existing = None
    make_dirs(out)
    manifest = existing or new_manifest(study)
    manifest["packages"] = _versions()
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def record_sources(
    out: Path,
    manifest: dict[str, Any],
    sources: list[ResolvedSource],
    variants: list[tuple[Variant, str | None]],
) -> None:
    """Add each source's and variant's file and SHA-256 to the manifest (a manifest that lost
    its mappings, damaged by hand, gets them again)."""
    for key in ("sources", "variants"):
        manifest.setdefault(key, {})
    for src in sources:
        manifest["sources"][src.name] = {
            "path": str(src.path),
            "sha256": src.sha256,
            "file_type": src.info.file_type,
            "packaged": src.packaged,
            "kind": src.kind,
            **dict(src.provenance),  # repo, commit, file SHA-256s, converter version
        }
    for variant, digest in variants:
        manifest["variants"][variant.id] = {
            "path": str(variant.path) if variant.path else None,
            "sha256": digest,
            "level": variant.level,
            "model": variant.model,
            "imatrix": dict(variant.imatrix) if variant.imatrix else None,
            # the KV-cache type, for a variant of a KV axis other than f16 (one file per level)
            **({"kv_cache": variant.kv_cache} if variant.label != variant.level else {}),
        }
    write_json_atomic(out / MANIFEST, manifest)


def record_round_order(out: Path, manifest: dict[str, Any], keys: list[str]) -> None:
    """Adaptive sampling's item order ("task|item", the whole plan's multiple-choice items):
    the analysis replays the stopping rule on it (a subset's own order would differ)."""
    if manifest.get("round_order") != keys:
        manifest["round_order"] = keys
        write_json_atomic(out / MANIFEST, manifest)


def record_environment(out: Path, manifest: dict[str, Any], cache: Path, probe: bool) -> None:
    """The doctor's facts for this session (the engine probe too when the study uses it)."""
    from quantmatrix.doctor import collect

    manifest["environment"] = collect(cache, probe=probe)
    write_json_atomic(out / MANIFEST, manifest)


def manifest_problems(out: Path) -> list[str]:
    """Re-hash every variant file the manifest names; list what no longer matches."""
    from quantmatrix.models.sources import sha256_file

    manifest = read_manifest(out)
    if manifest is None:
        return [f"{MANIFEST} missing"]
    problems = []
    for vid, entry in sorted(manifest.get("variants", {}).items()):
        path, digest = entry.get("path"), entry.get("sha256")
        if not path or not digest:
            continue
        if not Path(path).exists():
            problems.append(f"{vid}: model file {path} is gone")
        elif sha256_file(Path(path)) != digest:
            problems.append(f"{vid}: model file {path} changed since the run (SHA-256 differs)")
    return problems
