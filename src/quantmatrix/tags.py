"""Server model names for quant levels: Ollama's tag spelling of a model family's levels.

Pure string work, below ``config`` (which expands a model's tags with it) and the Ollama
backend alike, so the config never imports a backend.
"""

from __future__ import annotations

from collections.abc import Sequence

from quantmatrix.levels import check_level


def expand_ollama_family(family: str, levels: Sequence[str]) -> dict[str, str]:
    """Ollama tags for a family's quant levels, in Ollama's spelling.

    ``("llama3.2:1b-instruct", ["F16", "Q8_0", "Q4_K_M"])`` gives
    ``{"F16": "llama3.2:1b-instruct-fp16", "Q8_0": "...-q8_0", "Q4_K_M": "...-q4_K_M"}``.
    A family without a tag part (``"qwen2.5"``) gets the level as its tag (``"qwen2.5:q8_0"``).
    """
    joiner = "-" if ":" in family else ":"
    return {level: f"{family}{joiner}{_ollama_level(level)}" for level in levels}


def _ollama_level(level: str) -> str:
    check_level(level)
    floats = {"F32": "fp32", "F16": "fp16", "BF16": "bf16"}
    if level in floats:
        return floats[level]
    prefix = "iq" if level.startswith("IQ") else "q"
    return prefix + level[len(prefix) :]
