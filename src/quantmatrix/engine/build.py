"""What the installed llama.cpp build is: versions, compiled features, active paths, devices.

Everything here reads the build that ``import llama_cpp`` loads; nothing is guessed from the
CPU. Devices (CPU, CUDA, Vulkan, ...) are listed through ggml's own backend registry in
``libggml-base``, which the Python binding does not wrap, so it is called through ctypes.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    kind: str  # "cpu", "gpu", "igpu", "accel"
    free_bytes: int | None
    total_bytes: int | None


_DEVICE_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """``llama_print_system_info`` as {backend: {feature: value}}.

    >>> parse_system_info("CPU : AVX2 = 1 | REPACK = 1 | ")["CPU"]["REPACK"]
    '1'
    """
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        if " : " in part:  # "CPU : SSE3 = 1" starts a backend's section
            backend, _, part = part.partition(" : ")
            current = out.setdefault(backend.strip(), {})
        key, _, value = part.partition("=")
        if current is None:
            current = out.setdefault("", {})
        current[key.strip()] = value.strip()
    return out


@functools.cache
def llama_module() -> Any:
    """``llama_cpp`` imported once, or a one-line error saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - the package depends on it
        raise RuntimeError(
            f"llama-cpp-python is not importable ({exc}); run `make install`"
        ) from None
    return llama_cpp


def system_info() -> str:
    return str(llama_module().llama_print_system_info().decode(errors="replace").strip())


def supports_gpu_offload() -> bool:
    return bool(llama_module().llama_supports_gpu_offload())


def llama_cpp_version() -> str:
    """llama.cpp's own version string (build number and commit), as the library reports it."""
    lib = llama_module()
    try:
        return str(lib.llama_version().decode(errors="replace"))
    except AttributeError:  # older bindings
        return "unknown"


def _ggml() -> Any | None:
    lib_dir = Path(llama_module().__file__).parent / "lib"
    names = ["libggml.so", "libggml.dylib", "ggml.dll"]
    for name in names:
        if (lib_dir / name).exists():
            try:
                return ctypes.CDLL(str(lib_dir / name))
            except OSError:
                return None
    return None


def devices() -> list[Device]:
    """Every device ggml's backend registry knows, with free/total memory where it says."""
    base = _ggml()
    if base is None:
        return []
    try:
        base.ggml_backend_dev_count.restype = ctypes.c_size_t
        base.ggml_backend_dev_get.restype = ctypes.c_void_p
        base.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        for fn in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
            getattr(base, fn).restype = ctypes.c_char_p
            getattr(base, fn).argtypes = [ctypes.c_void_p]
        base.ggml_backend_dev_type.restype = ctypes.c_int
        base.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        base.ggml_backend_dev_memory.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_size_t),
            ctypes.POINTER(ctypes.c_size_t),
        ]
        found = []
        for i in range(int(base.ggml_backend_dev_count())):
            dev = base.ggml_backend_dev_get(i)
            free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
            base.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            found.append(
                Device(
                    name=(base.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
                    description=(base.ggml_backend_dev_description(dev) or b"").decode(
                        errors="replace"
                    ),
                    kind=_DEVICE_KINDS.get(int(base.ggml_backend_dev_type(dev)), "other"),
                    free_bytes=int(free.value) or None,
                    total_bytes=int(total.value) or None,
                )
            )
    except AttributeError:  # a libggml-base without the registry API
        return []
    return found


def cmake_args() -> str | None:
    """The CMake arguments the Makefile built this llama-cpp-python with (None: not built by it)."""
    path = Path(sys.prefix) / "llama-cmake-args.txt"
    return path.read_text().strip() if path.exists() else None


def build_facts() -> dict[str, Any]:
    """The build as plain data: goes into ``manifest.json`` and ``quantmatrix doctor``."""
    info = system_info()
    sections = parse_system_info(info)
    cpu = sections.get("CPU", {})
    return {
        "llama_cpp_python": metadata.version("llama-cpp-python"),
        "llama_cpp": llama_cpp_version(),
        "cmake_args": cmake_args(),
        "system_info": info,
        "cpu_features": sorted(k for k, v in cpu.items() if v == "1"),
        "paths": {
            "AMX": cpu.get("AMX_INT8") == "1",
            "REPACK": cpu.get("REPACK") == "1",
            "BLAS": "BLAS" in sections or cpu.get("BLAS") == "1",
            "OPENMP": cpu.get("OPENMP") == "1",
            "LLAMAFILE": cpu.get("LLAMAFILE") == "1",
        },
        "gpu_offload": supports_gpu_offload(),
        "backends": sorted(k for k in sections if k),
        "devices": [d.__dict__ for d in devices()],
    }
