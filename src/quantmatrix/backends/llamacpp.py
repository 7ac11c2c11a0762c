"""The embedded backend: llama.cpp in this process through llama-cpp-python.

Greedy decoding (temperature 0, repeat penalty 1.0); instruct models get their own chat
template, base models the raw prompt. Every sample starts from an empty KV cache, so its output
does not depend on which sample ran before it (and a resumed run matches an uninterrupted one).
Native prompt-eval and decode times come from llama.cpp's own performance counters.

Letter probabilities (``GenerationRequest.letter_count``) are read from the same generation: a
logits processor that changes nothing copies the first sampled position's raw logits (the
next-token distribution after the prompt, exactly what a separate forward pass over the prompt
gives), so they cost no extra forward pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantmatrix.backends.base import (
    BackendError,
    Capabilities,
    GenerationRequest,
    GenerationResult,
    MemoryReading,
    Timing,
)
from quantmatrix.backends.memory import RSSSampler
from quantmatrix.engine.gpu import GpuMemory, NvmlReader, gpu_bytes
from quantmatrix.engine.load import EngineSettings, open_llama

if TYPE_CHECKING:
    from quantmatrix.config import ModelSpec, Study
    from quantmatrix.models.ladder import Variant


@dataclass(frozen=True)
class LlamaCppOptions:
    context_length: int = 2048
    threads: int | None = None
    chat: bool = True
    seed: int = 42
    engine: EngineSettings | None = None  # None: this machine's (engine.settings)


def _chunk_text(chunk: Any, chat: bool) -> str:
    choice = chunk["choices"][0]
    if chat:
        return str(choice.get("delta", {}).get("content") or "")
    return str(choice.get("text") or "")


class _FirstLogits:
    """A logits processor that keeps a copy of the first row it sees and changes nothing."""

    def __init__(self) -> None:
        self.row: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.row is None:
            self.row = scores.copy()
        return scores


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, model_path: Path, options: LlamaCppOptions) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.options = options
        self.capabilities = Capabilities(
            logprobs=True, letter_probs=True, max_in_flight=1, native_timing=True
        )
        self._letter_ids: dict[int, list[tuple[int, ...]]] = {}
        self.engine = options.engine or _machine_settings()
        self._nvml = NvmlReader() if self.engine.offloaded else None
        self._gpu_before = self._nvml.read() if self._nvml else None
        self._gpu_last: GpuMemory | None = None
        self._vram_peak: int | None = None
        self._sampler = RSSSampler().start()
        threads = options.threads or os.cpu_count() or 1
        started = time.perf_counter()
        try:
            self.llm: Any = open_llama(
                model_path,
                self.engine,
                n_ctx=options.context_length,
                n_threads=threads,
                n_threads_batch=threads,
                seed=options.seed,
            )
        except (ValueError, RuntimeError) as exc:
            self._sampler.stop()
            raise BackendError(f"llama.cpp could not load {model_path}: {exc}") from None
        self.load_s = time.perf_counter() - started
        self.path = model_path
        self._track_gpu()

    def _stream(self, request: GenerationRequest, capture: _FirstLogits | None) -> Iterator[Any]:
        common: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "repeat_penalty": 1.0,
            "seed": request.seed,
            "stop": list(request.stop) or None,
            "stream": True,
        }
        if capture is not None:
            common["logits_processor"] = self._lib.LogitsProcessorList([capture])
        if self.options.chat:
            messages = [{"role": "user", "content": request.prompt}]
            if request.system:
                messages.insert(0, {"role": "system", "content": request.system})
            return iter(self.llm.create_chat_completion(messages=messages, **common))
        return iter(self.llm.create_completion(prompt=request.prompt, **common))

    def _one(self, request: GenerationRequest) -> GenerationResult:
        lib, ctx = self._lib, self.llm.ctx
        self.llm.reset()
        lib.llama_perf_context_reset(ctx)
        text, finish, ttft = "", "length", None
        started = time.perf_counter()
        capture = _FirstLogits() if request.letter_count > 0 else None
        stream = self._stream(request, capture)
        for chunk in stream:
            piece = _chunk_text(chunk, self.options.chat)
            if piece and ttft is None:
                ttft = time.perf_counter() - started
            text += piece
            reason = chunk["choices"][0].get("finish_reason")
            if reason:
                finish = str(reason)
            if request.stop_at_line_end and "\n" in text.lstrip():
                finish = "stop"
                break
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        wall = time.perf_counter() - started
        perf = lib.llama_perf_context(ctx)
        if request.stop_at_line_end:
            text = text.lstrip().split("\n", 1)[0]
        timing = Timing(
            prompt_tokens=int(perf.n_p_eval),
            # sampled: each decoded token + the last; llama-cpp-python also decodes the last
            # sampled token when max_tokens cuts the reply, hence the cap
            generated_tokens=min(int(perf.n_eval) + 1, request.max_tokens),
            wall_s=wall,
            prompt_eval_s=float(perf.t_p_eval_ms) / 1000.0,
            decode_s=float(perf.t_eval_ms) / 1000.0,
            decode_tokens=int(perf.n_eval),
            ttft_s=ttft,
        )
        letters = None if capture is None else self._letters(capture, request.letter_count)
        return GenerationResult(request.key, text, finish, timing, letter_probs=letters)

    def _letters(self, capture: _FirstLogits, n: int) -> tuple[float, ...] | None:
        from quantmatrix.scoring import logits as lg

        if capture.row is None:  # nothing was sampled (an empty prompt or max_tokens 0)
            return None
        ids = self._letter_ids.get(n)
        if ids is None:
            ids = self._letter_ids[n] = lg.letter_token_ids(self.llm, n)
        return tuple(float(p) for p in lg.letter_probs_from_logits(capture.row, ids))

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        for request in requests:
            yield self._one(request)

    def info(self) -> dict[str, Any]:
        lib = self._lib
        return {
            "engine": "llama.cpp (llama-cpp-python, in process)",
            "llama_cpp_python": str(lib.__version__),
            "system_info": lib.llama_print_system_info().decode(errors="replace").strip(),
            "threads": self.options.threads or os.cpu_count(),
            "context_length": self.options.context_length,
            "chat_template": self.options.chat,
            "load_s": self.load_s,
            "engine_settings": self.engine.as_dict(),
        }

    def _track_gpu(self) -> None:
        """Read this process's GPU memory now and keep the highest figure seen."""
        if self._nvml is None:
            return
        self._gpu_last = self._nvml.read()
        used = gpu_bytes(self._gpu_last, self._gpu_before)
        if used is not None:
            self._vram_peak = max(self._vram_peak or 0, used)

    def memory(self) -> MemoryReading | None:
        self._sampler.sample()
        extra: dict[str, Any] = {"rss_before_load": self._sampler.before,
                                 "offloaded": self.engine.offloaded}  # fmt: skip
        self._track_gpu()
        if self._gpu_last is not None:
            extra["gpu"] = self._gpu_last.as_dict()
            extra["vram_bytes"] = self._vram_peak  # None: not measured, never 0 for unknown
        return MemoryReading(
            peak_bytes=self._sampler.peak,
            source="process RSS peak (psutil, sampled every 50 ms)",
            extra=extra,
        )

    def close(self) -> None:
        self._sampler.stop()
        self.llm.close()


def _machine_settings(gpu_layers: int | None = None) -> EngineSettings:
    from quantmatrix.engine.probe import EngineError
    from quantmatrix.engine.settings import machine_settings

    try:
        return machine_settings(gpu_layers)
    except EngineError as exc:
        raise BackendError(str(exc)) from None


def create(variant: Variant, spec: ModelSpec, study: Study) -> LlamaCppBackend:
    """The registry's factory: the variant's GGUF file with this machine's engine settings and
    the model's GPU layers; chat unless the spec says otherwise or the file has no template."""
    assert variant.path is not None and variant.info is not None
    chat = spec.chat if spec.chat is not None else variant.info.has_chat_template
    engine = _machine_settings(study.gpu_layers_for(spec))
    options = LlamaCppOptions(
        study.context_length, study.threads, chat, study.decoding.seed, engine=engine
    )
    return LlamaCppBackend(variant.path, options)
