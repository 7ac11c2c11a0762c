"""Backends by name: a model's ``backend`` string -> the function that builds its backend.

Each entry names, as ``"module:function"``, the ``create(variant, spec, study)`` of one backend
module; that function reads what it needs from the model spec, the variant and the study, and
does the backend's own server-side steps (Ollama pulls a missing tag). Looking a name up imports
nothing: a backend's module, and its heavy library (llama_cpp, httpx), is imported only when a
backend of that name is created. A new backend is one module with a ``create`` and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from quantmatrix.backends.base import Backend, BackendError

if TYPE_CHECKING:
    from quantmatrix.backends.context_memory import ContextMemory
    from quantmatrix.config import ModelSpec, Study
    from quantmatrix.models.ladder import Variant

    Factory = Callable[[Variant, ModelSpec, Study], Backend]
    MemoryProbe = Callable[[Variant, ModelSpec, Study, int], ContextMemory]

FACTORIES: dict[str, str] = {
    "llamacpp": "quantmatrix.backends.llamacpp:create",
    "ollama": "quantmatrix.backends.ollama:create",
    "openai": "quantmatrix.backends.openai_compat:create",
    "fake": "quantmatrix.backends.fake:create",
}


# backend name -> "module:function" measuring one variant's memory at one context length,
# ``(variant, spec, study, n_ctx) -> context_memory.ContextMemory`` (pipeline/memory.py); a
# server holds its own memory and has none
MEMORY_PROBES: dict[str, str] = {
    "llamacpp": "quantmatrix.backends.context_memory:measure_variant",
    "fake": "quantmatrix.backends.fake:context_memory",
}


def memory_probe(name: str) -> MemoryProbe | None:
    """The memory-at-context function of backend ``name``, or None (servers)."""
    target = MEMORY_PROBES.get(name)
    if target is None:
        return None
    module, _, function = target.partition(":")
    return cast("MemoryProbe", getattr(importlib.import_module(module), function))


def names() -> list[str]:
    """The registered backend names, in registry order."""
    return list(FACTORIES)


def factory(name: str) -> Factory:
    """The ``create`` function registered as ``name`` (its module is imported now)."""
    target = FACTORIES.get(name)
    if target is None:
        known = ", ".join(FACTORIES)
        raise BackendError(f"unknown backend {name!r}; known backends: {known}")
    module, _, function = target.partition(":")
    return cast("Factory", getattr(importlib.import_module(module), function))


def create(name: str, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
    """Build the backend ``name`` for one variant of ``spec`` in ``study``."""
    return factory(name)(variant, spec, study)
