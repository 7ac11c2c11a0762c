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
_VERSIONS = (2, 3)  # what llama.cpp reads
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MIN_TENSOR_INFO = 8 + 4 + 8 + 4 + 8  # name length, n_dims, one dim, type, offset
_MIN_KV = 8 + 4 + 1  # key length, value type, a one-byte value


class _Cursor:
    """A forward-only reader over the GGUF header (arrays of strings are skipped, not decoded);
    every length is checked against what is left of the file before it is read."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.size = size
        self.pos = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        raw = self.fh.read(size)
        if len(raw) < size:
            raise EOFError("the header ends early")
        self.pos += size
        return struct.unpack(fmt, raw)[0]

    def count(self, what: str, each: int) -> int:
        """A count read from the header, refused if that many items cannot fit in the file."""
        n: int = self.take("<Q")
        if n * each > self.size - self.pos:
            raise ValueError(
                f"the header declares {what} {n}, more than its {self.size} bytes hold"
            )
        return n

    def skip(self, n: int) -> None:
        self.fh.seek(n, 1)
        self.pos += n

    def string(self) -> str:
        n = self.count("a string of length", 1)
        self.pos += n
        return self.fh.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype = self.take("<I")
            if etype in _SCALARS:
                each = struct.calcsize(_SCALARS[etype])
                self.skip(each * self.count("an array of length", each))
            elif etype in (_STRING, _ARRAY):
                for _ in range(self.count("an array of length", 8)):
                    self.value(etype)
            else:
                raise ValueError(f"unknown array element type {etype}")
            return None
        if vtype not in _SCALARS:
            raise ValueError(f"unknown value type {vtype}")
        return self.take(_SCALARS[vtype])


@dataclass(frozen=True)
class _Tensor:
    name: str
    ttype: int
    dims: tuple[int, ...]
    offset: int  # from the start of the data section


def _scan(path: Path) -> tuple[dict[str, Any], list[_Tensor], int]:
    """KV scalars, the tensor table, and where tensor data starts (aligned)."""
    with path.open("rb") as fh:
        cur = _Cursor(fh, path.stat().st_size)
        cur.take("<I")  # magic
        version = cur.take("<I")
        if version not in _VERSIONS:
            raise ValueError(f"GGUF version {version}; llama.cpp reads versions 2 and 3")
        n_tensors = cur.count("a tensor count of", _MIN_TENSOR_INFO)
        n_kv = cur.count("a key-value count of", _MIN_KV)
        kv: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            kv[key] = cur.value(cur.take("<I"))
            if key == "tokenizer.chat_template":
                kv[key] = True
        tensors = []
        for _ in range(n_tensors):
            name, n_dims = cur.string(), cur.take("<I")
            if n_dims > _MAX_DIMS:
                raise ValueError(f"tensor {name!r} has {n_dims} dimensions (at most {_MAX_DIMS})")
            dims = tuple(cur.take("<Q") for _ in range(n_dims))
            tensors.append(_Tensor(name, cur.take("<I"), dims, cur.take("<Q")))
        align = kv.get("general.alignment") or 32
        if not isinstance(align, int) or align & (align - 1):
            raise ValueError(f"general.alignment {align!r} is not a power of two")
        start = -(-cur.pos // align) * align
    return kv, tensors, start


def _tensor_bytes(t: _Tensor) -> tuple[str, int]:
    """The tensor's type name and size in bytes, refused as llama.cpp refuses them."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        qtype = GGMLQuantizationType(t.ttype)
        block, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise ValueError(f"tensor {t.name!r} has unknown type {t.ttype}") from None
    n_el = math.prod(t.dims)
    if n_el >= 2**63 or (t.dims and t.dims[0] % block):
        raise ValueError(f"tensor {t.name!r} has dimensions {list(t.dims)} unfit for {qtype.name}")
    return qtype.name, n_el // block * type_size


def _data_end(tensors: list[_Tensor], sizes: list[int], align: int) -> tuple[int, int]:
    """Where the last tensor's data ends, unpadded and padded, checking that each tensor starts
    where the one before it ends (llama.cpp's rule): a tensor table read with the wrong count
    or a flipped offset fails here."""
    expected = end = 0
    names: set[str] = set()
    for t, nb in zip(tensors, sizes, strict=True):
        if t.name in names:
            raise ValueError(f"tensor {t.name!r} is listed twice")
        names.add(t.name)
        if t.offset != expected:
            raise ValueError(f"tensor {t.name!r} starts at data offset {t.offset}, not {expected}")
        end = expected + nb
        expected += -(-nb // align) * align
    return end, expected


def read_info(
    path: Path, fix: str = "download or build it again", whole_size: int | None = None
) -> GGUFInfo:
    """Parse and check the header and tensor table before llama.cpp ever sees the file.

    Checked as llama.cpp's loader checks them, and against the file's size: magic, version,
    counts and lengths that fit in the file, at most 4 dimensions, known tensor types, each
    tensor starting where the previous one ends, the data neither cut short nor followed by
    more bytes than the last tensor's padding (a tensor count too small leaves such bytes).
    gguf's ``GGUFReader`` decodes every tokenizer string (3 s for SmolLM2's 49k vocabulary,
    about 20 s for a 150k one, on 2 cores); this scan skips them and takes block sizes from
    ``gguf.GGML_QUANT_SIZES``. ``fix`` ends the one-line error: what the user should do.
    ``whole_size``: ``path`` is the first piece of a file of that size (a packaged model's
    first part, whose header is whole), read before the pieces are assembled.
    """
    check_magic(path)
    size = whole_size or path.stat().st_size
    try:
        kv, tensors, data_start = _scan(path)
        typed = [_tensor_bytes(t) for t in tensors]
        end, padded = _data_end(
            tensors, [nb for _, nb in typed], int(kv.get("general.alignment") or 32)
        )
    except (EOFError, ValueError, struct.error) as exc:
        raise GGUFError(f"{path} is truncated or corrupt ({exc}); {fix}") from None
    if data_start + end > size:
        raise GGUFError(f"{path} is truncated ({size} of {data_start + end} bytes); {fix}")
    if size > data_start + padded:
        raise GGUFError(
            f"{path} is corrupt ({size - data_start - end} bytes follow the data of its "
            f"{len(tensors)} tensors: a wrong tensor count, or bytes appended); {fix}"
        )
    hist = collections.Counter(name for name, _ in typed)
    n_params = sum(math.prod(t.dims) for t in tensors)
    n_bytes = sum(nb for _, nb in typed)
    ftype = kv.get("general.file_type")
    return GGUFInfo(
        path=str(path),
        size_bytes=size,
        architecture=str(kv.get("general.architecture") or "unknown"),
        name=str(kv.get("general.name") or path.stem),
        file_type=_file_type(ftype),
        n_params=n_params,
        tensor_bytes=n_bytes,
        tensor_types=dict(sorted(hist.items())),
        bits_per_weight=8.0 * n_bytes / n_params if n_params else 0.0,
        has_chat_template=bool(kv.get("tokenizer.chat_template")),
    )


def _file_type(ftype: Any) -> str:
    if ftype is None:
        return "unknown"
    if not isinstance(ftype, int):
        return f"type{ftype}"
    return FILE_TYPES.get(ftype, f"type{ftype}")


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
