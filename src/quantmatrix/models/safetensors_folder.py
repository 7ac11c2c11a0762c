"""A model folder in Hugging Face's layout: config.json, *.safetensors, tokenizer files.

What it holds is read from the files themselves: the weights' dtype from each safetensors
header (the JSON at the start of the file), a quantized checkpoint from config.json's
``quantization_config``, and every file's SHA-256 (cached by path, size and mtime).
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.models.hashing import sha256_file

_FLOATS = {"F16": "F16", "BF16": "BF16", "F32": "F32", "F64": "F32"}


class FolderError(ValueError):
    """A folder that is not a usable safetensors model; one line."""


@dataclass(frozen=True)
class SafetensorsFolder:
    folder: Path
    architectures: tuple[str, ...]
    dtype: str  # the weights' own float type: F16, BF16 or F32 (most parameters)
    quantized: str | None  # config.json's quantization_config quant_method, if any
    file_sha256: dict[str, str]  # every file the conversion reads, by name

    @property
    def outtype(self) -> str:
        """The converter's --outtype: bf16 for BF16 weights, else f16."""
        return "bf16" if self.dtype == "BF16" else "f16"


def looks_like_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _header(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise FolderError(f"{path} is not a safetensors file (too short)")
        (size,) = struct.unpack("<Q", raw)
        if size > 100_000_000:
            raise FolderError(f"{path} is not a safetensors file (header size {size})")
        try:
            header: dict[str, Any] = json.loads(fh.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FolderError(f"{path} is not a safetensors file (unreadable header)") from None
    return header


def _dtype(files: list[Path]) -> str:
    weight: Counter[str] = Counter()
    for path in files:
        for name, entry in _header(path).items():
            if name == "__metadata__":
                continue
            n = 1
            for d in entry.get("shape", []):
                n *= int(d)
            weight[str(entry.get("dtype"))] += n
    floats = Counter({_FLOATS[k]: v for k, v in weight.items() if k in _FLOATS})
    if not floats:
        raise FolderError(f"{files[0].parent}: no float tensors in its safetensors files")
    return floats.most_common(1)[0][0]


def read_folder(folder: Path, cache: Path | None) -> SafetensorsFolder:
    """Describe ``folder``; a folder without config.json or safetensors is refused."""
    if not looks_like_folder(folder):
        raise FolderError(f"{folder} is no Hugging Face model folder (it has no config.json)")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise FolderError(f"{folder} holds no *.safetensors files; quantmatrix converts only those")
    try:
        config = json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError:
        raise FolderError(f"{folder}/config.json is not valid JSON") from None
    quant = config.get("quantization_config") or None
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return SafetensorsFolder(
        folder=folder,
        architectures=tuple(config.get("architectures") or ()),
        dtype=_dtype(weights),
        quantized=str(quant.get("quant_method", "unknown")) if isinstance(quant, dict) else None,
        file_sha256={p.name: sha256_file(p.resolve(), cache) for p in files},
    )
