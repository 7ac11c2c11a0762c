"""Where a variant's weights come from, decided from the files (the report's first lines).

original        the source's own full-precision weights (a float source, a float level)
quantized       a level quantized from such original weights
reconstruction  a level above a quantized source's precision, rebuilt from it
shipped         a quantized source file itself
requantized     a level at or below a quantized source's precision, built from it
server          weights a server holds under a tag; their precision is what the tag says
scripted        the fake backend: no weights
"""

from __future__ import annotations

FLOAT_LEVELS = frozenset({"F32", "F16", "BF16"})


def origin_of(source_original: bool, source_type: str, level: str, reconstructed: bool) -> str:
    """The origin of a level built from a source (``level`` without its -imat marker)."""
    if source_original:
        return "original" if level in FLOAT_LEVELS else "quantized"
    if reconstructed:
        return "reconstruction"
    return "shipped" if level == source_type else "requantized"


def fileless_origin(backend: str) -> str:
    """A variant without a file: a server's tag, or the fake backend's script."""
    return "scripted" if backend == "fake" else "server"
