"""The tests' tiny model: the package's tiny random-weight llama with SmolLM2's tokenizer."""

from __future__ import annotations

from pathlib import Path

from quantmatrix.engine import tiny_model


def smollm2_path() -> Path:
    from quantmatrix.models.sources import resolve_source

    return resolve_source("smollm2-135m-instruct", "smollm2-135m-instruct").path


def write_tiny_llama(path: Path, seed: int = 0, tokenizer_from: Path | None = None) -> Path:
    """The tiny F16 llama (hidden 256) tokenizing as SmolLM2 does (or as ``tokenizer_from``)."""
    return tiny_model.write_tiny_llama(path, seed, tokenizer_from or smollm2_path())
