"""GPU memory through NVML (``nvidia-ml-py``): what this process holds on each device.

An offloaded model's weights, KV cache and compute buffers live in GPU memory, which process
RSS does not see. :class:`NvmlReader` reads NVML's per-process accounting (and the device's
used memory, as a fallback for drivers that hide per-process figures). Where NVML cannot be
read the result says "not measured" with the reason, never 0.

The NVML module is injectable: tests pass a fake with the same functions.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuMemory:
    """One reading. ``process_bytes`` None: NVML gave no per-process figure for this process."""

    source: str
    process_bytes: int | None
    device_used_bytes: int | None
    devices: tuple[dict[str, Any], ...] = ()
    error: str | None = None

    @property
    def measured(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "process_bytes": self.process_bytes,
                "device_used_bytes": self.device_used_bytes, "devices": list(self.devices),
                "error": self.error}  # fmt: skip


def not_measured(reason: str) -> GpuMemory:
    return GpuMemory(f"not measured: {reason}", None, None, (), reason)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class NvmlReader:
    """Reads NVML once per call; ``nvml`` defaults to ``pynvml`` from ``nvidia-ml-py``."""

    def __init__(self, nvml: Any | None = None, pid: int | None = None) -> None:
        self._nvml = nvml
        self.pid = os.getpid() if pid is None else pid

    def _module(self) -> Any:
        if self._nvml is None:
            import pynvml

            self._nvml = pynvml
        return self._nvml

    def read(self) -> GpuMemory:
        try:
            nvml = self._module()
            nvml.nvmlInit()
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded ...
            return not_measured(f"NVML unavailable ({type(exc).__name__}: {exc})")
        try:
            return self._read(nvml)
        except Exception as exc:  # an NVMLError mid-read: say so, never report 0
            return not_measured(f"NVML read failed ({type(exc).__name__}: {exc})")
        finally:
            with contextlib.suppress(Exception):  # shutting down a failed library: best effort
                nvml.nvmlShutdown()

    def _read(self, nvml: Any) -> GpuMemory:
        devices: list[dict[str, Any]] = []
        process_total: int | None = None
        used_total = 0
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
            mine = None
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                held = getattr(proc, "usedGpuMemory", None)
                if int(proc.pid) == self.pid and held is not None:
                    mine = (mine or 0) + int(held)
            if mine is not None:
                process_total = (process_total or 0) + mine
            used_total += int(info.used)
            devices.append({"index": index, "name": _text(nvml.nvmlDeviceGetName(handle)),
                            "total_bytes": int(info.total), "used_bytes": int(info.used),
                            "process_bytes": mine})  # fmt: skip
        if not devices:
            return not_measured("NVML sees no GPU")
        return GpuMemory("NVML (nvidia-ml-py)", process_total, used_total, tuple(devices))


def gpu_bytes(reading: GpuMemory, before: GpuMemory | None) -> int | None:
    """GPU memory this process holds: NVML's per-process figure, else the growth of the
    devices' used memory since before the model loaded; None when NVML could not be read."""
    if not reading.measured:
        return None
    if reading.process_bytes is not None:
        return reading.process_bytes
    if before is None or not before.measured or reading.device_used_bytes is None:
        return None
    return max(0, reading.device_used_bytes - (before.device_used_bytes or 0))
