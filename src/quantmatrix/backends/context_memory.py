"""Peak memory of one variant at one context length, on llama.cpp, in a fresh child process.

The child imports llama-cpp-python, opens the file through ``engine.load.open_llama`` (the
variant's KV-cache type and flash attention, this machine's GPU layers and buffer types, a
context of ``n_ctx`` tokens, batches of 512), and fills the context by decoding token ids:

- ``fill: full``: ``n_ctx - 1`` tokens, so every KV cell is written and the compute buffers
  have run at the full context; the figure is the child's peak RSS (the kernel's high-water
  mark ``VmHWM``, which starts afresh at ``exec``: ``ru_maxrss`` would carry the parent's peak
  over), the true peak of a full context.
- ``fill: batch``: one batch of 512 tokens (every weight touched, the KV cache already
  allocated and zeroed by llama.cpp at creation); the figure is the larger of the peak RSS and
  the RSS before loading plus every buffer llama.cpp allocated (model, KV, compute, output),
  i.e. the untouched rest of the compute buffer counted as allocated.

On a GPU (layers offloaded) the figure is NVML's reading for the child, with the RSS beside.
llama.cpp's own buffer sizes are read from its log (``... buffer size = N MiB``). A fresh
process per measurement, so nothing of the study runner (scoring models, earlier variants) is
counted. ``python -m quantmatrix.backends.context_memory`` is the child.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantmatrix.backends.base import BackendError
from quantmatrix.engine.load import EngineSettings

if TYPE_CHECKING:
    from quantmatrix.config import ModelSpec, Study
    from quantmatrix.models.ladder import Variant

BATCH_TOKENS = 512  # n_batch = n_ubatch, llama-cpp-python's default
CHILD_TIMEOUT_S = 3600
MIB = 2**20
_BUFFER = re.compile(r"(\S+)\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB")


@dataclass(frozen=True)
class ContextMemory:
    """One measurement; bytes as llama.cpp and the kernel report them."""

    n_ctx: int
    kv_cache: str
    flash_attn: bool
    fill: str  # "full" or "batch"
    filled_tokens: int
    peak_bytes: int  # the figure the decision uses (see ``basis``)
    basis: str
    rss_before_bytes: int  # the child with llama-cpp-python imported, before loading
    rss_peak_bytes: int
    model_bytes: int  # llama.cpp's buffers, by kind (summed over buffer types)
    kv_bytes: int
    compute_bytes: int
    output_bytes: int
    vram_bytes: int | None
    offloaded: bool
    fill_s: float

    @property
    def allocated_bytes(self) -> int:
        return self.model_bytes + self.kv_bytes + self.compute_bytes + self.output_bytes


def buffer_sizes(log: str) -> dict[str, int]:
    """Bytes per buffer kind (model, KV, compute, output) from llama.cpp's load log."""
    out = {"model": 0, "KV": 0, "compute": 0, "output": 0}
    for _, kind, mib in _BUFFER.findall(log):
        out[kind] += round(float(mib) * MIB)
    return out


def _figure(fill: str, rss: tuple[int, int], allocated: int, vram: int | None) -> tuple[int, str]:
    before, peak = rss
    if vram is not None:
        return vram, "GPU memory of the process (NVML) after filling"
    if fill == "full":
        return peak, "peak RSS, the whole context filled"
    if before + allocated > peak:
        return before + allocated, "RSS before load + llama.cpp's allocated buffers"
    return peak, "peak RSS after one batch (above the allocated buffers)"


@dataclass(frozen=True)
class ChildJob:
    path: Path
    n_ctx: int
    engine: EngineSettings
    threads: int
    fill: str

    def argv(self) -> list[str]:
        e = self.engine
        return [sys.executable, "-m", "quantmatrix.backends.context_memory", str(self.path),
                "--n-ctx", str(self.n_ctx), "--kv", e.kv_cache, "--threads", str(self.threads),
                "--gpu-layers", str(e.gpu_layers), "--extra-bufts", str(int(e.extra_bufts)),
                "--fill", self.fill]  # fmt: skip


def measure(job: ChildJob) -> ContextMemory:
    """Run the child; a failure (a context llama.cpp cannot create, a killed child) is a
    :class:`BackendError` naming the variant file, the context and llama.cpp's last words."""
    try:
        done = subprocess.run(job.argv(), capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BackendError(
            f"memory at {job.n_ctx} tokens of {job.path.name}: no answer in {CHILD_TIMEOUT_S} s"
        ) from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        said = " ".join(done.stderr.split())[-240:]
        raise BackendError(
            f"memory at {job.n_ctx} tokens of {job.path.name} ({job.engine.kv_cache} KV): the "
            f"child exited {done.returncode}: {said}"
        )
    return ContextMemory(**json.loads(lines[-1]))


def measure_variant(variant: Variant, spec: ModelSpec, study: Study, n_ctx: int) -> ContextMemory:
    """The registry's memory probe for the embedded engine: the variant's file and KV type,
    this machine's engine settings and the model's GPU layers, the study's threads and fill."""
    from quantmatrix.backends.llamacpp import _machine_settings

    assert variant.path is not None
    engine = replace(_machine_settings(study.gpu_layers_for(spec)), kv_cache=variant.kv_cache)
    fill = study.memory.fill if study.memory is not None else "full"
    threads = study.threads or os.cpu_count() or 1
    return measure(ChildJob(Path(variant.path), n_ctx, engine, threads, fill))


def peak_rss() -> int:
    """This process's peak RSS since it was exec'd: ``VmHWM`` of ``/proc/self/status``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise BackendError("no VmHWM in /proc/self/status: peak memory is measured on Linux only")


def _child(job: ChildJob) -> dict[str, Any]:
    """Open, fill, read; everything the parent needs as one JSON line."""
    import llama_cpp
    import psutil

    from quantmatrix.engine.gpu import NvmlReader, gpu_bytes
    from quantmatrix.engine.load import open_llama

    said: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def keep(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        said.append(text.decode(errors="replace"))

    llama_cpp.llama_log_set(keep, ctypes.c_void_p(0))
    proc = psutil.Process()
    nvml = NvmlReader() if job.engine.offloaded else None
    gpu_before = nvml.read() if nvml else None
    before = proc.memory_info().rss
    llm = open_llama(job.path, job.engine, n_ctx=job.n_ctx, n_batch=BATCH_TOKENS,
                     n_ubatch=BATCH_TOKENS, n_threads=job.threads,
                     n_threads_batch=job.threads)  # fmt: skip
    n_fill = job.n_ctx - 1 if job.fill == "full" else min(BATCH_TOKENS, job.n_ctx - 1)
    vocab = int(llm.n_vocab())
    started = time.perf_counter()
    llm.eval([(7919 * i + 13) % vocab for i in range(n_fill)])
    fill_s = time.perf_counter() - started
    peak = peak_rss()
    vram = gpu_bytes(nvml.read(), gpu_before) if nvml else None
    sizes = buffer_sizes("".join(said))
    allocated = sum(sizes.values())
    figure, basis = _figure(job.fill, (before, peak), allocated, vram)
    llm.close()
    return asdict(
        ContextMemory(
            n_ctx=job.n_ctx, kv_cache=job.engine.kv_cache, flash_attn=job.engine.flash_attn,
            fill=job.fill, filled_tokens=n_fill, peak_bytes=figure, basis=basis,
            rss_before_bytes=before, rss_peak_bytes=peak, model_bytes=sizes["model"],
            kv_bytes=sizes["KV"], compute_bytes=sizes["compute"], output_bytes=sizes["output"],
            vram_bytes=vram, offloaded=job.engine.offloaded, fill_s=fill_s,
        )
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description="peak memory of one model at one context")
    parser.add_argument("path", type=Path)
    parser.add_argument("--n-ctx", type=int, required=True)
    parser.add_argument("--kv", default="f16")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--extra-bufts", default="1")
    parser.add_argument("--fill", choices=("full", "batch"), default="full")
    ns = parser.parse_args()
    engine = EngineSettings(ns.gpu_layers, ns.extra_bufts == "1", "memory phase", ns.kv)
    print(json.dumps(_child(ChildJob(ns.path, ns.n_ctx, engine, ns.threads, ns.fill))))


if __name__ == "__main__":
    main()
