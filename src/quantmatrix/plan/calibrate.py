"""A short calibration run on this machine: how fast a model file runs, how fast the quantizer is.

A model file is loaded the way the study's embedded backend loads it (``backends/llamacpp.py``:
the same threads, chat template, context and batch decoder), warmed up, then asked one request
alone (about 300 prompt tokens of the packaged calibration text, 64 new tokens): the engine's
own counters give prompt-eval and decode tok/s. With a batch size above 1, ``batch`` requests
with short distinct prompts (about 50 tokens) are then decoded together (32 new tokens each) and
the aggregate decode speed kept; prompt evaluation is taken as measured alone (a batch's prompts
go through the engine as one long prompt would). About 10-40 s a file on 2 idle cores. The
quantizer is timed on a random-weight llama written for the purpose
(``engine/tiny_model.py``, every dimension a multiple of 256, about 60 million weights): each
level the study builds, and F16 from Q4_K_M (the dequantization a 4-bit source starts with).
Results are kept in the calibration table (``speeds.py``) and reused.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from quantmatrix.backends.base import BackendError, GenerationRequest, GenerationResult
from quantmatrix.engine.tiny_model import CALIBRATION_SHAPE, write_tiny_llama
from quantmatrix.models.gguf_info import read_info
from quantmatrix.plan.model import Speeds

PROMPT_CHARS = 1200  # about 300 tokens of English for these tokenizers
BATCH_PROMPT_CHARS = 200
DECODE_TOKENS = 64
BATCH_DECODE_TOKENS = 32
INSTRUCTION = "Continue the following text in the same style for several paragraphs.\n\n"


def calibration_text() -> str:
    ref = resources.files("quantmatrix") / "data" / "calibration.txt"
    return ref.read_text(encoding="utf-8")


def _prompts(count: int, chars: int) -> list[str]:
    text = calibration_text()
    step = max((len(text) - chars) // max(count, 1), 1)
    return [INSTRUCTION + text[i * step : i * step + chars] for i in range(count)]


def _tps(tokens: float, seconds: float | None) -> float | None:
    return tokens / seconds if seconds and seconds > 0 and tokens > 0 else None


def _aggregate(results: Sequence[GenerationResult]) -> tuple[float | None, float | None]:
    prompt = _tps(sum(r.timing.prompt_tokens for r in results),
                  sum(r.timing.prompt_eval_s or 0.0 for r in results))  # fmt: skip
    decode = _tps(sum(r.timing.decode_tokens or 0 for r in results),
                  sum(r.timing.decode_s or 0.0 for r in results))  # fmt: skip
    return prompt, decode


def calibrate_file(path: Path, threads: int, batch: int, gpu_layers: int | None = None) -> Speeds:
    """Measure one GGUF file as the study's embedded backend would run it."""
    from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
    from quantmatrix.engine.probe import EngineError
    from quantmatrix.engine.settings import machine_settings

    info = read_info(path)
    try:
        engine = machine_settings(gpu_layers)
    except EngineError as exc:
        raise BackendError(str(exc)) from None
    options = LlamaCppOptions(threads=threads, chat=info.has_chat_template, batch_size=batch,
                              engine=engine)  # fmt: skip
    loadavg = os.getloadavg()[0]
    backend = LlamaCppBackend(path, options)
    try:
        list(backend.generate([GenerationRequest("warmup", "Reply with: ready", max_tokens=4)]))
        prompt = _prompts(1, PROMPT_CHARS)[0]
        single = list(backend.generate([GenerationRequest("one", prompt, DECODE_TOKENS)]))
        pp, tg = _aggregate(single)
        group = [GenerationRequest(f"b{i}", p, BATCH_DECODE_TOKENS, batch_group=0)
                 for i, p in enumerate(_prompts(batch, BATCH_PROMPT_CHARS))]  # fmt: skip
        batch_tg = _aggregate(list(backend.generate(group)))[1] if batch > 1 else None
        text = calibration_text()[:PROMPT_CHARS]
        n_tokens = len(backend.llm.tokenize(text.encode(), add_bos=False, special=False))
        raw = len(backend.llm.tokenize(prompt.encode(), add_bos=False, special=False))
    finally:
        backend.close()
    if pp is None or tg is None:
        raise BackendError(f"{path.name}: the calibration request decoded no tokens")
    return Speeds(
        prompt_tps=pp, decode_tps=tg, batch=batch, batch_prompt_tps=pp if batch_tg else None,
        batch_decode_tps=batch_tg, load_s=backend.load_s,
        chars_per_token=len(text) / max(n_tokens, 1),
        template_tokens=max(single[0].timing.prompt_tokens - raw, 0), basis="measured",
        note=f"load average {loadavg:.1f}",
    )  # fmt: skip


def calibrate_quantizer(levels: Sequence[str], threads: int) -> dict[str, float]:
    """Seconds per billion weights of llama.cpp's quantizer for each level (``F16``: from a
    Q4_K_M file), timed on a random-weight model written into a temporary folder."""
    from quantmatrix.models.ladder import quantize_file

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="quantmatrix-calibration-") as tmp:
        f16 = write_tiny_llama(Path(tmp) / "F16.gguf", seed=0, shape=CALIBRATION_SHAPE)
        billions = read_info(f16).n_params / 1e9
        wanted = [lv for lv in levels if lv != "F16"]
        if "F16" in levels and "Q4_K_M" not in wanted:
            wanted.append("Q4_K_M")
        for level in wanted:
            started = time.perf_counter()
            quantize_file(f16, Path(tmp) / f"{level}.gguf", level, threads)
            out[level] = (time.perf_counter() - started) / billions
        if "F16" in levels:
            started = time.perf_counter()
            quantize_file(Path(tmp) / "Q4_K_M.gguf", Path(tmp) / "back.gguf", "F16", threads)
            out["F16"] = (time.perf_counter() - started) / billions
    return {lv: s for lv, s in out.items() if lv in levels}
