"""The embedded backend: llama.cpp in this process through llama-cpp-python.

Greedy decoding (temperature 0, repeat penalty 1.0); instruct models get their own chat
template, base models the raw prompt. Every sample starts from an empty KV cache, so its output
does not depend on which sample ran before it (and a resumed run matches an uninterrupted one).
Native prompt-eval and decode times come from llama.cpp's own performance counters.

Requests that share a ``batch_group`` (consecutive, at most ``batch_size`` of them) are decoded
together as sequences of one context, their shared prompt prefix evaluated once
(:mod:`quantmatrix.backends.llamacpp_batch`); a request without a group, a group of one,
``batch_size`` 1, or a group that asks for sampling (temperature > 0) takes the single-stream
path below, exactly as before batching existed.

Letter probabilities (``GenerationRequest.letter_count``) are read from the same generation: a
logits processor that changes nothing copies the first sampled position's raw logits (the
next-token distribution after the prompt, exactly what a separate forward pass over the prompt
gives), so they cost no extra forward pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
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
from quantmatrix.backends.batching import runs
from quantmatrix.backends.llamacpp_batch import BatchDecoder
from quantmatrix.backends.llamacpp_seq import SeqState
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
    batch_size: int = 1  # sequences decoded together (Study.batch_size); 1: one at a time


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
        self._decoder: BatchDecoder | None = None
        self._formatter: Any = None  # the chat formatter, its template compiled once
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
        if options.batch_size > 1:  # its KV cache is part of the load and of the memory read
            try:
                self._decoder = BatchDecoder(self.llm, options.batch_size, options.context_length)
            except BackendError:
                self._sampler.stop()
                self.llm.close()
                raise
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
        letters = None if capture is None else self._letters(capture.row, request.letter_count)
        return GenerationResult(request.key, text, finish, timing, letter_probs=letters)

    def _letters(self, row: Any, n: int) -> tuple[float, ...] | None:
        from quantmatrix.scoring import logits as lg

        if row is None:  # nothing was sampled (an empty prompt or max_tokens 0)
            return None
        ids = self._letter_ids.get(n)
        if ids is None:
            ids = self._letter_ids[n] = lg.letter_token_ids(self.llm, n)
        return tuple(float(p) for p in lg.letter_probs_from_logits(row, ids))

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        size = self.options.batch_size
        for run in runs(requests):
            for k in range(0, len(run), size):
                group = run[k : k + size]
                seqs = self._sequences(group) if len(group) > 1 else None
                if seqs is None:
                    yield from (self._one(request) for request in group)
                else:
                    yield from self._batched(seqs)

    # -- batched decoding (backends/llamacpp_batch.py) ----------------------------------------

    def _sequences(self, group: Sequence[GenerationRequest]) -> list[SeqState] | None:
        """The group as sequences, or None where it must take the single-stream path."""
        if any(r.temperature != 0 or not r.prompt for r in group):
            return None
        seqs = [self._sequence(r) for r in group]
        return None if any(s is None for s in seqs) else [s for s in seqs if s is not None]

    def _sequence(self, request: GenerationRequest) -> SeqState | None:
        from quantmatrix.scoring import logits as lg

        stops = list(request.stop)
        if self.options.chat:
            messages = [{"role": "user", "content": request.prompt}]
            if request.system:
                messages.insert(0, {"role": "system", "content": request.system})
            try:
                self._formatter = self._formatter or lg.chat_formatter(self.llm)
                tokens, template_stops = lg.chat_prompt(self.llm, messages, self._formatter)
            except ValueError:  # a chat format whose prompt tokens are not reproducible
                return None
            stops += template_stops
        else:
            tokens = lg.prompt_tokens(self.llm, request.prompt, chat=False)
        n_ctx = self.options.context_length
        if len(tokens) >= n_ctx:  # the single-stream path raises llama-cpp-python's error
            return None
        # llama-cpp-python's cap: the prompt and the reply fit in the context
        budget = min(request.max_tokens, n_ctx - len(tokens))
        return SeqState(request, tokens, tuple(s.encode() for s in stops), budget)

    def _batched(self, seqs: list[SeqState]) -> Iterator[GenerationResult]:
        assert self._decoder is not None  # made at load when batch_size > 1
        wall = self._decoder.run(seqs)
        engine = sum(s.prompt_s + s.decode_s for s in seqs)
        overhead = max(wall - engine, 0.0) / len(seqs)
        for s in seqs:
            n = s.request.letter_count
            letters = self._letters(s.first_logits, n) if n > 0 else None
            finish = s.finish or "length"
            yield GenerationResult(s.request.key, s.output(), finish, s.timing(overhead),
                                   letter_probs=letters)  # fmt: skip

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
            "batch_size": self.options.batch_size,
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
        if self._decoder is not None:
            self._decoder.close()
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
    the model's GPU layers and the variant's KV-cache type; chat unless the spec says otherwise
    or the file has no template."""
    assert variant.path is not None and variant.info is not None
    chat = spec.chat if spec.chat is not None else variant.info.has_chat_template
    engine = replace(_machine_settings(study.gpu_layers_for(spec)), kv_cache=variant.kv_cache)
    options = LlamaCppOptions(study.context_length, study.threads, chat, study.decoding.seed,
                              engine=engine, batch_size=study.batch_size)  # fmt: skip
    return LlamaCppBackend(variant.path, options)
