"""The tests' tiny Hugging Face model: a random-weight llama saved with ``transformers``.

Hidden 256, feed-forward 512, 2 layers (every row a multiple of 256, so k-quants apply without
fallbacks), F16 safetensors, and a 512-piece SentencePiece tokenizer trained on the packaged
calibration text (byte fallback on, so any text tokenizes; option letters are pieces).
Seeded: the same call writes the same weights and tokenizer.
"""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path

VOCAB = 512
LETTERS = "ABCDEFGHIJ"


def _train_tokenizer(folder: Path) -> None:
    import sentencepiece as spm

    text = (resources.files("quantmatrix") / "data" / "calibration.txt").read_text()
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([ln for ln in text.splitlines() if ln.strip()]),
        model_writer=model,
        vocab_size=VOCAB,
        model_type="unigram",
        byte_fallback=True,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
        # option letters as single tokens, as the multiple-choice letter scoring needs them
        user_defined_symbols=[f"\u2581{c}" for c in LETTERS] + list(LETTERS),
    )
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "model_max_length": 2048, "tokenizer_class": "LlamaTokenizer"}  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))


def write_tiny_hf_llama(folder: Path, seed: int = 0, architecture: str | None = None) -> Path:
    """Save the tiny llama into ``folder`` (config.json, model.safetensors, tokenizer) and
    return it; ``architecture`` overrides config.json's (to test an unsupported one)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    _train_tokenizer(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    LlamaForCausalLM(config).to(torch.float16).save_pretrained(folder)
    if architecture is not None:
        path = folder / "config.json"
        data = json.loads(path.read_text())
        data["architectures"] = [architecture]
        path.write_text(json.dumps(data, indent=2))
    return folder
