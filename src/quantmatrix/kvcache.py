"""KV-cache types: the second memory knob beside the quant level (llama.cpp's
``--cache-type-k/-v``, Ollama's ``OLLAMA_KV_CACHE_TYPE``).

A variant is (quant level, KV type). Its *label* is the level alone for the default KV cache
(``f16``), so every variant id of a study without a KV axis stays ``model@LEVEL``; any other
KV type is marked ``LEVEL+kv-TYPE`` (``Q4_K_M+kv-q8_0``): no ``/`` or ``:``, so an id can be
part of a file name. K and V use the same type. Labels order by (level rank, KV rank): the
ladder walks down the levels, and within a level from the widest KV type to the narrowest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quantmatrix.levels import RANK

# K and V of one type, widest first; ggml's name (llama_cpp.GGML_TYPE_<NAME>) and bytes per
# element (a block's bytes over its 32 values for the quantized types)
KvType = Literal["f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"]
DEFAULT_KV: KvType = "f16"
KV_MARK = "+kv-"


@dataclass(frozen=True)
class KvSpec:
    name: str
    ggml: str  # llama_cpp.GGML_TYPE_<ggml>
    bytes_per_value: float


KV_TYPES: dict[str, KvSpec] = {
    s.name: s
    for s in (
        KvSpec("f16", "F16", 2.0),
        KvSpec("bf16", "BF16", 2.0),
        KvSpec("q8_0", "Q8_0", 34 / 32),
        KvSpec("q5_1", "Q5_1", 24 / 32),
        KvSpec("q5_0", "Q5_0", 22 / 32),
        KvSpec("q4_1", "Q4_1", 20 / 32),
        KvSpec("q4_0", "Q4_0", 18 / 32),
        KvSpec("iq4_nl", "IQ4_NL", 18 / 32),
    )
}
KV_RANK: dict[str, int] = {name: i for i, name in enumerate(KV_TYPES)}
# the types an Ollama server takes in OLLAMA_KV_CACHE_TYPE
OLLAMA_KV_TYPES = ("f16", "q8_0", "q4_0")


def needs_flash_attn(kv: str) -> bool:
    """llama.cpp creates no context with a quantized V cache unless flash attention is on
    (checked on llama-cpp-python 0.3.36: "Failed to create llama_context")."""
    return kv not in ("f16", "bf16")


def variant_label(level: str, kv: str = DEFAULT_KV) -> str:
    """``Q4_K_M`` for the default KV cache, ``Q4_K_M+kv-q8_0`` for another."""
    return level if kv == DEFAULT_KV else f"{level}{KV_MARK}{kv}"


def split_label(label: str) -> tuple[str, str]:
    """(level, KV type) of a label; a plain level has the default KV cache."""
    level, mark, kv = label.partition(KV_MARK)
    return (level, kv) if mark else (label, DEFAULT_KV)


def label_rank(label: str) -> tuple[int, int]:
    """Sort key down a ladder: the level's precision rank, then the KV type's (unknown last)."""
    level, kv = split_label(label)
    return RANK.get(level, len(RANK)), KV_RANK.get(kv, len(KV_RANK))


def kv_bytes(n_ctx: int, layers: int, kv_width: int, kv: str = DEFAULT_KV) -> float:
    """K and V of ``n_ctx`` tokens: 2 x layers x (KV heads x head size) x bytes per value."""
    return 2.0 * layers * kv_width * KV_TYPES[kv].bytes_per_value * n_ctx
