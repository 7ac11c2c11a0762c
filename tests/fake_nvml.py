"""A fake NVML: the functions of ``pynvml`` that ``engine.gpu.NvmlReader`` calls."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class FakeNvml:
    """The functions of pynvml that NvmlReader calls, over a scripted device list."""

    def __init__(self, devices: list[dict[str, Any]], fail: str | None = None) -> None:
        self.devices, self.fail, self.shutdown = devices, fail, 0

    def nvmlInit(self) -> None:
        if self.fail == "init":
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdown += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> dict[str, Any]:
        return self.devices[i]

    def nvmlDeviceGetMemoryInfo(self, h: dict[str, Any]) -> Any:
        if self.fail == "memory":
            raise RuntimeError("GPU is lost")
        return SimpleNamespace(total=h["total"], used=h["used"], free=h["total"] - h["used"])

    def nvmlDeviceGetName(self, h: dict[str, Any]) -> bytes:
        return str(h["name"]).encode()

    def nvmlDeviceGetComputeRunningProcesses(self, h: dict[str, Any]) -> list[Any]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=b) for pid, b in h["procs"]]


def gpu(used: int, procs: list[tuple[int, int | None]]) -> dict[str, Any]:
    """One device of ``FakeNvml``: ``procs`` as (pid, bytes held, or None if hidden)."""
    return {"name": "NVIDIA H200", "total": 141 * 10**9, "used": used, "procs": procs}
