"""What a GGUF file holds, read from the file itself: type, tensor-type histogram, bits/weight."""

from __future__ import annotations

import collections
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from quantmatrix.kvcache import DEFAULT_KV, kv_bytes

GGUF_MAGIC = b"GGUF"

# llama.cpp's enum llama_ftype values, as written in general.file_type
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
}  # fmt: skip


class GGUFError(ValueError):
    """A file that is not a usable GGUF model; the message says which and why."""


@dataclass(frozen=True)
class GGUFInfo:
    path: str
    size_bytes: int
    architecture: str
    name: str
    file_type: str
    n_params: int
    tensor_bytes: int
    tensor_types: dict[str, int]  # type name -> number of tensors
    bits_per_weight: float  # measured: 8 x tensor bytes / parameters
    has_chat_template: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_magic(path: Path) -> None:
    if not path.is_file():
        raise GGUFError(f"model file not found: {path}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise GGUFError(f"{path} is not a GGUF file (magic {magic!r}, expected b'GGUF')")


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9


class _Cursor:
    """A forward-only reader over the GGUF header (arrays of strings are skipped, not decoded)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        raw = self.fh.read(size)
        if len(raw) < size:
            raise EOFError("header ends early")
        return struct.unpack(fmt, raw)[0]

    def string(self) -> str:
        n = self.take("<Q")
        raw = self.fh.read(n)
        if len(raw) < n:
            raise EOFError("header ends early")
        return raw.decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.take("<I"), self.take("<Q")
            if etype in _SCALARS:
                self.fh.seek(struct.calcsize(_SCALARS[etype]) * count, 1)
            else:
                for _ in range(count):
                    self.value(etype)
            return None
        if vtype not in _SCALARS:
            raise ValueError(f"unknown value type {vtype}")
        return self.take(_SCALARS[vtype])


def _scan(path: Path) -> tuple[dict[str, Any], list[tuple[str, int, int, int]], int]:
    """KV scalars, tensors as (name, type, n_elements, offset), and where tensor data starts."""
    with path.open("rb") as fh:
        cur = _Cursor(fh)
        cur.take("<I")  # magic
        cur.take("<I")  # version
        n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
        kv: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            kv[key] = cur.value(cur.take("<I"))
            if key == "tokenizer.chat_template":
                kv[key] = True
        tensors = []
        for _ in range(n_tensors):
            name = cur.string()
            dims = [cur.take("<Q") for _ in range(cur.take("<I"))]
            ttype, offset = cur.take("<I"), cur.take("<Q")
            tensors.append((name, ttype, math.prod(dims), offset))
        align = int(kv.get("general.alignment") or 32)
        start = -(-fh.tell() // align) * align
    return kv, tensors, start


def read_info(path: Path) -> GGUFInfo:
    """Parse the header and tensor table; a truncated file is reported as such.

    gguf's ``GGUFReader`` decodes every tokenizer string (about 20 s for a 150k vocabulary on
    2 cores); this scan skips them and takes block sizes from ``gguf.GGML_QUANT_SIZES``.
    """
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    check_magic(path)
    size = path.stat().st_size
    try:
        kv, tensors, data_start = _scan(path)
    except (EOFError, ValueError, struct.error) as exc:
        raise GGUFError(
            f"{path} is truncated or corrupt ({exc}); download or build it again"
        ) from None
    hist: collections.Counter[str] = collections.Counter()
    n_params = n_bytes = end = 0
    for _name, ttype, n_el, offset in tensors:
        qtype = GGMLQuantizationType(ttype)
        block, type_size = GGML_QUANT_SIZES[qtype]
        nb = n_el // block * type_size
        hist[qtype.name] += 1
        n_params += n_el
        n_bytes += nb
        end = max(end, data_start + offset + nb)
    if end > size:
        raise GGUFError(f"{path} is truncated ({size} of {end} bytes); download or build it again")
    ftype = kv.get("general.file_type")
    return GGUFInfo(
        path=str(path),
        size_bytes=size,
        architecture=str(kv.get("general.architecture") or "unknown"),
        name=str(kv.get("general.name") or path.stem),
        file_type=FILE_TYPES.get(int(ftype), f"type{ftype}") if ftype is not None else "unknown",
        n_params=n_params,
        tensor_bytes=n_bytes,
        tensor_types=dict(sorted(hist.items())),
        bits_per_weight=8.0 * n_bytes / n_params if n_params else 0.0,
        has_chat_template=bool(kv.get("tokenizer.chat_template")),
    )


def kv_cache_bytes(path: Path, n_ctx: int, kv_type: str = DEFAULT_KV) -> int | None:
    """The KV cache of ``n_ctx`` tokens the file's model needs (None: the header lacks the
    attention sizes): 2 (K and V) x layers x KV heads x head size x the type's bytes per value
    (2 for f16; ``kvcache.kv_bytes``)."""
    try:
        kv, _, _ = _scan(path)
    except (OSError, EOFError, ValueError, struct.error):
        return None
    arch = kv.get("general.architecture")
    layers, embd = kv.get(f"{arch}.block_count"), kv.get(f"{arch}.embedding_length")
    heads = kv.get(f"{arch}.attention.head_count")
    if not (isinstance(layers, int) and isinstance(embd, int) and isinstance(heads, int)):
        return None
    kv_heads = kv.get(f"{arch}.attention.head_count_kv")
    kv_heads = kv_heads if isinstance(kv_heads, int) and kv_heads > 0 else heads
    head_size = kv.get(f"{arch}.attention.key_length")
    head_size = head_size if isinstance(head_size, int) and head_size > 0 else embd // heads
    return int(kv_bytes(n_ctx, layers, kv_heads * head_size, kv_type))
