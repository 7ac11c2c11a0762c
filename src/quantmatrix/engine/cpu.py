"""The host CPU's instruction-set features and the llama.cpp build flags that follow from them.

Standard library only: the Makefile runs this file directly, before the package is installed,
to choose the CMake arguments for building llama-cpp-python::

    python src/quantmatrix/engine/cpu.py --cmake            # this CPU's features, AMX left out
    python src/quantmatrix/engine/cpu.py --cmake --amx      # ... with AMX, where the CPU has it
    python src/quantmatrix/engine/cpu.py --cmake --gpu cuda # ... plus the CUDA backend

Why not ``GGML_NATIVE``: ``-march=native`` compiles in ggml's AMX kernels whenever the CPU
advertises AMX, and on some virtual machines the first quantized matrix multiply then dies with
SIGILL (``tileloadd`` in ``ggml_backend_amx_mul_mat``). Naming each feature instead keeps every
other kernel (AVX2, AVX-512, VNNI, the CPU repack buffers) and leaves AMX to an explicit opt-in.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

# ggml CMake option -> the /proc/cpuinfo flags it needs (all of them)
X86_OPTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("GGML_SSE42", ("sse4_2",)),
    ("GGML_AVX", ("avx",)),
    ("GGML_AVX2", ("avx2",)),
    ("GGML_FMA", ("fma",)),
    ("GGML_F16C", ("f16c",)),
    ("GGML_BMI2", ("bmi2",)),
    ("GGML_AVX_VNNI", ("avx_vnni",)),
    ("GGML_AVX512", ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")),
    ("GGML_AVX512_VBMI", ("avx512vbmi",)),
    ("GGML_AVX512_VNNI", ("avx512_vnni",)),
    ("GGML_AVX512_BF16", ("avx512_bf16",)),
)
AMX_OPTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("GGML_AMX_TILE", ("amx_tile",)),
    ("GGML_AMX_INT8", ("amx_int8",)),
    ("GGML_AMX_BF16", ("amx_bf16",)),
)
GPU_OPTIONS = {"cuda": "-DGGML_CUDA=on", "vulkan": "-DGGML_VULKAN=on", "metal": "-DGGML_METAL=on"}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The feature flags of the first processor in ``cpuinfo`` (empty where there is none)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def cmake_args(
    flags: frozenset[str], machine: str, amx: bool = False, gpu: str | None = None
) -> list[str]:
    """CMake arguments for llama.cpp on a CPU with ``flags`` (``machine`` as ``uname -m``)."""
    args: list[str] = []
    if machine in ("x86_64", "AMD64", "i686"):
        args.append("-DGGML_NATIVE=OFF")
        options = X86_OPTIONS + (AMX_OPTIONS if amx else ())
        for option, needs in options:
            args.append(f"-D{option}={'ON' if all(f in flags for f in needs) else 'OFF'}")
        if not amx:
            args += [f"-D{option}=OFF" for option, _ in AMX_OPTIONS]
    # other architectures (aarch64, ...) keep llama.cpp's native default: no AMX there
    if gpu:
        if gpu not in GPU_OPTIONS:
            raise SystemExit(f"unknown GPU backend {gpu!r}; choose one of {sorted(GPU_OPTIONS)}")
        args.append(GPU_OPTIONS[gpu])
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--cmake", action="store_true", help="print the CMake arguments")
    parser.add_argument("--amx", action="store_true", help="compile in AMX where the CPU has it")
    parser.add_argument("--gpu", default="", help="add a GPU backend: cuda, vulkan or metal")
    ns = parser.parse_args()
    flags = cpu_flags()
    if ns.cmake:
        print(" ".join(cmake_args(flags, platform.machine(), ns.amx, ns.gpu or None)))
    else:
        print(cpu_model())
        print(" ".join(sorted(flags)))


if __name__ == "__main__":
    main()
