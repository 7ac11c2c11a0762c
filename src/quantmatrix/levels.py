"""Quantization levels quantmatrix knows: llama.cpp file types and their nominal bits.

Every level that can use an importance matrix also exists with the marker ``-imat``
(``Q4_K_M-imat``): the same file type, built with the model's importance matrix
(models/imatrix.py). Q2_K_S, IQ3_XXS, IQ2_* and IQ1_* (llama.cpp refuses them without one)
exist only so, or under a model's ``imatrix: true``.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAT_SUFFIX = "-imat"
# no use for an importance matrix: float types, and Q8_0 (its quantizer ignores one)
_NO_IMATRIX = frozenset({"F32", "F16", "BF16", "Q8_0"})


@dataclass(frozen=True)
class Level:
    name: str
    ftype: str  # the llama_cpp.LLAMA_FTYPE_MOSTLY_* suffix
    bits: float  # nominal bits per weight (for ordering and the published memory estimate)
    needs_imatrix: bool = False
    imatrix: bool = False  # the "-imat" marker: built with an importance matrix

    @property
    def base(self) -> str:
        """The llama.cpp level name, without the marker."""
        return self.name.removesuffix(IMAT_SUFFIX)


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
    ("IQ3_XXS", "IQ3_XXS", 3.06, True),
    ("Q2_K", "Q2_K", 2.625, False),
    ("Q2_K_S", "Q2_K_S", 2.5, True),
    ("IQ2_M", "IQ2_M", 2.7, True),
    ("IQ2_S", "IQ2_S", 2.5, True),
    ("IQ2_XS", "IQ2_XS", 2.31, True),
    ("IQ2_XXS", "IQ2_XXS", 2.06, True),
    ("IQ1_M", "IQ1_M", 1.75, True),
    ("IQ1_S", "IQ1_S", 1.56, True),
]

LEVELS: dict[str, Level] = {}
# Sort key position: a stable rank for equal nominal bits (table order = precision order);
# a level's "-imat" twin sorts right after it.
RANK: dict[str, int] = {}
for _i, (_n, _f, _b, _im) in enumerate(_TABLE):
    LEVELS[_n] = Level(_n, _f, _b, _im)
    RANK[_n] = 2 * _i
    if _n not in _NO_IMATRIX:
        LEVELS[_n + IMAT_SUFFIX] = Level(_n + IMAT_SUFFIX, _f, _b, _im, imatrix=True)
        RANK[_n + IMAT_SUFFIX] = 2 * _i + 1


def can_use_imatrix(name: str) -> bool:
    return name.removesuffix(IMAT_SUFFIX) not in _NO_IMATRIX


def check_level(name: str) -> Level:
    """Return the level or raise a ValueError naming the known ones."""
    level = LEVELS.get(name)
    if level is None:
        known = ", ".join(n for n in LEVELS if not n.endswith(IMAT_SUFFIX))
        raise ValueError(
            f"unknown quant level {name!r}; known levels: {known} (most also with -imat)"
        )
    return level
