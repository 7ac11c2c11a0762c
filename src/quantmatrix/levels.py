"""Quantization levels quantmatrix knows: llama.cpp file types and their nominal bits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    name: str
    ftype: str  # the llama_cpp.LLAMA_FTYPE_MOSTLY_* suffix
    bits: float  # nominal bits per weight (for ordering and the published memory estimate)
    needs_imatrix: bool = False


_TABLE: list[tuple[str, str, float, bool]] = [
    ("F32", "ALL_F32", 32.0, False),
    ("F16", "F16", 16.0, False),
    ("BF16", "BF16", 16.0, False),
    ("Q8_0", "Q8_0", 8.5, False),
    ("Q6_K", "Q6_K", 6.5625, False),
    ("Q5_K_M", "Q5_K_M", 5.5, False),
    ("Q5_K_S", "Q5_K_S", 5.5, False),
    ("Q5_1", "Q5_1", 6.0, False),
    ("Q5_0", "Q5_0", 5.5, False),
    ("Q4_K_M", "Q4_K_M", 4.5, False),
    ("Q4_K_S", "Q4_K_S", 4.5, False),
    ("Q4_1", "Q4_1", 5.0, False),
    ("Q4_0", "Q4_0", 4.5, False),
    ("IQ4_NL", "IQ4_NL", 4.5, False),
    ("IQ4_XS", "IQ4_XS", 4.25, False),
    ("Q3_K_L", "Q3_K_L", 3.4375, False),
    ("Q3_K_M", "Q3_K_M", 3.4375, False),
    ("Q3_K_S", "Q3_K_S", 3.4375, False),
    ("IQ3_M", "IQ3_M", 3.44, False),
    ("IQ3_S", "IQ3_S", 3.44, False),
    ("IQ3_XS", "IQ3_XS", 3.3, False),
    ("IQ3_XXS", "IQ3_XXS", 3.06, False),
    ("Q2_K", "Q2_K", 2.625, False),
    ("Q2_K_S", "Q2_K_S", 2.5, True),
    ("IQ2_M", "IQ2_M", 2.7, True),
    ("IQ2_S", "IQ2_S", 2.5, True),
    ("IQ2_XS", "IQ2_XS", 2.31, True),
    ("IQ2_XXS", "IQ2_XXS", 2.06, True),
    ("IQ1_M", "IQ1_M", 1.75, True),
    ("IQ1_S", "IQ1_S", 1.56, True),
]

LEVELS: dict[str, Level] = {n: Level(n, f, b, im) for n, f, b, im in _TABLE}

# Sort key position: a stable rank for equal nominal bits (table order = precision order).
RANK: dict[str, int] = {n: i for i, (n, *_rest) in enumerate(_TABLE)}


def check_level(name: str) -> Level:
    """Return the level or raise a ValueError naming the known ones."""
    level = LEVELS.get(name)
    if level is None:
        known = ", ".join(LEVELS)
        raise ValueError(f"unknown quant level {name!r}; known levels: {known}")
    return level
