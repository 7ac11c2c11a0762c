"""This machine's engine settings: GPU layers from the study and the build, extra buffer types
from the engine probe (or ``QUANTMATRIX_EXTRA_BUFTS=0|1``, which skips the probe)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from quantmatrix.engine.load import ALL_LAYERS, EngineSettings

EXTRA_BUFTS_ENV = "QUANTMATRIX_EXTRA_BUFTS"


@functools.cache
def _extra_bufts(cache: Path) -> tuple[bool, str]:
    forced = os.environ.get(EXTRA_BUFTS_ENV)
    if forced in ("0", "1"):
        return forced == "1", f"set by {EXTRA_BUFTS_ENV}={forced}"
    from quantmatrix.engine.probe import probe_verdict

    verdict = probe_verdict(cache, os.cpu_count() or 1)
    return verdict.extra_bufts, verdict.reason


def default_gpu_layers() -> int:
    """All layers when the build has a GPU backend, else none."""
    from quantmatrix.engine.build import supports_gpu_offload

    return ALL_LAYERS if supports_gpu_offload() else 0


def machine_settings(gpu_layers: int | None = None, cache: Path | None = None) -> EngineSettings:
    """Settings for loading a model here (``gpu_layers`` None: :func:`default_gpu_layers`)."""
    if cache is None:
        from quantmatrix.models.sources import default_cache

        cache = default_cache()
    extra, reason = _extra_bufts(cache)
    layers = default_gpu_layers() if gpu_layers is None else gpu_layers
    return EngineSettings(gpu_layers=layers, extra_bufts=extra, reason=reason)
