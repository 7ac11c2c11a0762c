"""Executors by name: ``Study.executor.kind`` -> the function that builds one.

Like ``backends/registry.py``: each entry names ``"module:function"``; looking a name up imports
nothing, so Ray is imported only when the ray executor is created.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from quantmatrix.backends.base import BackendError
from quantmatrix.config import ExecutorSpec
from quantmatrix.pipeline.executors.base import BackendFactory, Executor

Factory = Callable[[ExecutorSpec, BackendFactory], Executor]

FACTORIES: dict[str, str] = {
    "local": "quantmatrix.pipeline.executors.local:create",
    "ray": "quantmatrix.pipeline.executors.ray_executor:create",
}


def create(spec: ExecutorSpec, backends: BackendFactory) -> Executor:
    """The executor ``spec.kind`` for a call of the evaluation phase."""
    target = FACTORIES.get(spec.kind)
    if target is None:
        raise BackendError(f"unknown executor {spec.kind!r}; known: {', '.join(FACTORIES)}")
    module, _, function = target.partition(":")
    return cast("Factory", getattr(importlib.import_module(module), function))(spec, backends)
