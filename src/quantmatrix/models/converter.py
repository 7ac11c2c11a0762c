"""safetensors -> GGUF with llama.cpp's own ``convert_hf_to_gguf.py``.

The converter is taken from the llama-cpp-python sdist of the installed version (its
``vendor/llama.cpp`` is the llama.cpp the engine was built from), with its own ``gguf-py``:
``cache/sdist/`` holds the sdist (``make install`` puts it there; else ``pip download`` fetches
it), ``cache/converter/<version>/`` the extracted scripts. It runs in a child process; its
output is written under a temporary name and renamed when whole, cached by the SHA-256 of every
input file and of the converter itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from quantmatrix.models.hashing import default_cache
from quantmatrix.models.safetensors_folder import SafetensorsFolder

DIST = "llama-cpp-python"
_MEMBERS = ("vendor/llama.cpp/convert_hf_to_gguf.py", "vendor/llama.cpp/conversion/",
            "vendor/llama.cpp/gguf-py/", ".git/modules/vendor/llama.cpp/HEAD")  # fmt: skip


class ConvertError(RuntimeError):
    """The converter could not be had or refused the model; one line."""


@dataclass(frozen=True)
class Converter:
    folder: Path  # holds convert_hf_to_gguf.py, conversion/, gguf-py/
    version: dict[str, str]  # llama-cpp-python, llama.cpp commit, gguf-py, script SHA-256

    @property
    def script(self) -> Path:
        return self.folder / "convert_hf_to_gguf.py"


def engine_version() -> str:
    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:
        raise ConvertError(f"{DIST} is not installed; run `make install`") from None


def sdist_path(cache: Path, version: str) -> Path:
    """Where the sdist is: ``$QUANTMATRIX_LLAMA_SDIST``, this cache's ``sdist/``, or the user
    cache's (where ``make install`` puts it); else where it will be downloaded to."""
    name = f"llama_cpp_python-{version}.tar.gz"
    named = os.environ.get("QUANTMATRIX_LLAMA_SDIST")
    places = [Path(named)] if named else []
    places += [cache / "sdist" / name, default_cache() / "sdist" / name]
    return next((p for p in places if p.is_file()), places[-2])


def _fetch_sdist(target: Path, version: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "-q", "-d", str(target.parent), f"{DIST}=={version}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConvertError(
            f"llama.cpp's converter comes from the {DIST}=={version} sdist, which pip could not "
            f"download ({last}); run `make install` where PyPI is reachable"
        )


def _extract(sdist: Path, folder: Path, version: str) -> None:
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    root = f"llama_cpp_python-{version}/"
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            rel = member.name.removeprefix(root)
            if not any(rel == m or rel.startswith(m) for m in _MEMBERS) or not member.isfile():
                continue
            dest = tmp / rel.removeprefix("vendor/llama.cpp/").removeprefix(".git/modules/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            handle = tar.extractfile(member)
            if handle is not None:
                dest.write_bytes(handle.read())
    if not (tmp / "convert_hf_to_gguf.py").exists():
        raise ConvertError(f"{sdist} holds no vendor/llama.cpp/convert_hf_to_gguf.py")
    os.replace(tmp, folder)


def _version_of(folder: Path, version: str) -> dict[str, str]:
    import tomllib

    script = (folder / "convert_hf_to_gguf.py").read_bytes()
    head = folder / "vendor" / "llama.cpp" / "HEAD"
    gguf_toml = tomllib.loads((folder / "gguf-py" / "pyproject.toml").read_text())
    return {
        DIST: version,
        "llama_cpp_commit": head.read_text().strip() if head.exists() else "unknown",
        "gguf_py": str(gguf_toml.get("project", {}).get("version", "unknown")),
        "script_sha256": hashlib.sha256(script).hexdigest(),
    }


def ensure_converter(cache: Path) -> Converter:
    """The converter of the installed engine's llama.cpp, extracted once into the cache."""
    version = engine_version()
    folder = cache / "converter" / version
    if not (folder / "convert_hf_to_gguf.py").exists():
        sdist = sdist_path(cache, version)
        if not sdist.exists():
            _fetch_sdist(sdist, version)
        folder.parent.mkdir(parents=True, exist_ok=True)
        _extract(sdist, folder, version)
    return Converter(folder, _version_of(folder, version))


def conversion_key(model: SafetensorsFolder, converter: Converter, outtype: str, name: str) -> str:
    payload = {"files": model.file_sha256, "converter": converter.version, "outtype": outtype,
               "name": name}  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cached_conversion(model: SafetensorsFolder, cache: Path, name: str) -> Path | None:
    """The model's converted GGUF if the cache already holds it (nothing extracted or written;
    None also when the converter was never extracted into this cache)."""
    folder = cache / "converter" / engine_version()
    if not (folder / "convert_hf_to_gguf.py").exists():
        return None
    converter = Converter(folder, _version_of(folder, engine_version()))
    key = conversion_key(model, converter, model.outtype, name)
    target = cache / "converted" / key[:16] / f"{model.outtype.upper()}.gguf"
    return target if target.exists() else None


def convert(
    model: SafetensorsFolder, cache: Path, name: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """The model's GGUF at its own float precision (F16, or BF16 for BF16 weights), cached;
    ``name`` is its general.name (default: the folder's name)."""
    converter = ensure_converter(cache)
    outtype = model.outtype
    name = name or model.folder.name
    key = conversion_key(model, converter, outtype, name)
    target = cache / "converted" / key[:16] / f"{outtype.upper()}.gguf"
    record = {"converter": converter.version, "outtype": outtype.upper(), "key": key}
    if target.exists():
        return target, record
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    cmd = [sys.executable, str(converter.script), str(model.folder), "--outtype", outtype,
           "--outfile", str(tmp), "--model-name", name]  # fmt: skip
    log = target.with_suffix(".convert.log")
    with log.open("w") as fh:
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise ConvertError(
            f"llama.cpp's converter refused {model.folder.name}: {_last_error(log)} "
            f"(full log: {log})"
        )
    os.replace(tmp, target)
    return target, record


def _last_error(log: Path) -> str:
    """The converter's own message: the last 'SomeError: text' line of its output."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) and " " not in head:
            return line[:300]
    return (lines[-1] if lines else "no output")[:300]
