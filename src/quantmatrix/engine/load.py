"""Loading a model into llama.cpp with this machine's engine settings.

Every ``llama_cpp.Llama`` the project creates (the embedded backend, the KL phase) goes through
:func:`open_llama`, so GPU offload, the extra CPU buffer types and the KV-cache type (with
flash attention where a quantized V cache needs it) are set in one place;
:func:`open_for_eval` opens one for direct evaluation (``scoring/logits.py`` works on it).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.kvcache import DEFAULT_KV, KV_TYPES, needs_flash_attn

ALL_LAYERS = -1  # llama-cpp-python: -1 offloads every layer


@dataclass(frozen=True)
class EngineSettings:
    """How llama.cpp runs a model here.

    ``gpu_layers``: layers offloaded to the GPU (-1 all, 0 none). ``extra_bufts``: llama.cpp's
    extra CPU buffer types (AMX, the CPU repack of Q4_0/Q4_K/IQ4_NL/... weights), turned off
    only where the engine probe saw them crash (see :mod:`quantmatrix.engine.probe`).
    ``kv_cache``: the K and V cache type (``kvcache.KV_TYPES``), the variant's.
    """

    gpu_layers: int = 0
    extra_bufts: bool = True
    reason: str = "default"
    kv_cache: str = DEFAULT_KV

    @property
    def offloaded(self) -> bool:
        return self.gpu_layers != 0

    @property
    def flash_attn(self) -> bool:
        """On where the KV type needs it; off otherwise (llama-cpp-python's default)."""
        return needs_flash_attn(self.kv_cache)

    def context_kwargs(self) -> dict[str, Any]:
        """``Llama`` arguments for the KV cache: none for f16 (llama.cpp's default, as every
        run before the KV axis), else ``type_k``/``type_v`` and flash attention."""
        if self.kv_cache == DEFAULT_KV:
            return {}
        import llama_cpp

        ggml = getattr(llama_cpp, f"GGML_TYPE_{KV_TYPES[self.kv_cache].ggml}")
        return {"type_k": ggml, "type_v": ggml, "flash_attn": self.flash_attn}

    def as_dict(self) -> dict[str, Any]:
        kv: dict[str, Any] = {}
        if self.kv_cache != DEFAULT_KV:
            kv = {"kv_cache": self.kv_cache, "flash_attn": self.flash_attn}
        return {"gpu_layers": self.gpu_layers, "extra_bufts": self.extra_bufts,
                "reason": self.reason, **kv}  # fmt: skip


_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_defaults(extra_bufts: bool) -> Iterator[None]:
    """``Llama.__init__`` starts from ``llama_model_default_params()`` and exposes no
    ``use_extra_bufts`` argument, so the default is wrapped while one model loads."""
    from llama_cpp import llama_cpp as lib

    if extra_bufts:  # llama.cpp's own default
        yield
        return
    with _PATCH_LOCK:
        original = lib.llama_model_default_params

        def patched() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        lib.llama_model_default_params = patched
        try:
            yield
        finally:
            lib.llama_model_default_params = original


def open_llama(path: Path, settings: EngineSettings, **kwargs: Any) -> Any:
    """A quiet ``llama_cpp.Llama`` for ``path`` under ``settings`` (``kwargs``: context,
    threads, batch, ... as ``Llama`` takes them)."""
    import llama_cpp

    with _model_defaults(settings.extra_bufts):
        return llama_cpp.Llama(
            model_path=str(path), n_gpu_layers=settings.gpu_layers, verbose=False,
            **settings.context_kwargs(), **kwargs,
        )  # fmt: skip


def open_for_eval(
    path: Path,
    n_ctx: int,
    threads: int | None,
    logits_all: bool,
    n_batch: int | None = None,
    engine: EngineSettings | None = None,
) -> Any:
    """A quiet ``llama_cpp.Llama`` for direct evaluation (``threads`` None: all cores;
    ``n_batch`` None: the context, at most 512; ``engine`` None: this machine's settings)."""
    from quantmatrix.engine.settings import machine_settings

    n = threads or os.cpu_count() or 1
    batch = n_batch or min(n_ctx, 512)
    return open_llama(path, engine or machine_settings(), n_ctx=n_ctx, n_batch=batch,
                      n_threads=n, n_threads_batch=n, logits_all=logits_all)  # fmt: skip
