"""The OpenAI-compatible backend: llama.cpp's ``llama-server``, ``llama_cpp.server``, vLLM, ...

Generation goes through ``/v1/chat/completions`` (``chat=True``: the server applies the model's
chat template) or ``/v1/completions`` (``chat=False``: the raw prompt). Every request is greedy:
temperature 0, ``top_k`` 1, ``repeat_penalty`` 1.0 (llama-cpp-python's server defaults to 1.1)
and the request's seed. Replies are streamed (server-sent events, ``options.stream``), with
``stream_options.include_usage``: the client-side time to first token (``ttft_s``) is the
arrival of the first chunk with text (see :mod:`quantmatrix.backends.openai_stream` for what
is read from the chunks); ``stream=False`` asks for one JSON reply and has no TTFT.

Timing: token counts from ``usage``; native prompt-eval and decode times from llama-server's
``timings`` object (``prompt_ms``, ``predicted_ms``, ``prompt_n``, ``predicted_n``) when the
server sends one, else the native times are None (llama-cpp-python's server sends none).
llama-cpp-python's server does send an ``openai-processing-ms`` header (its own handling time
of the request, in whole ms); it becomes ``Timing.server_s`` for a non-streamed request (for a
streamed one it is only the time until the stream began, so it is not kept).

Log-probabilities are requested when ``options.logprobs``; a server that refuses them (an error
mentioning logprobs) is asked again without, and not asked for them again. They are returned in
``GenerationResult.logprobs`` (one :class:`TokenLogprob` per generated token).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from quantmatrix.backends.base import (
    BackendError,
    Capabilities,
    GenerationRequest,
    GenerationResult,
    MemoryReading,
    Timing,
    TokenLogprob,
)
from quantmatrix.backends.http import (
    JsonClient,
    ServerOptions,
    ServerReplyError,
    answer_first_line,
    entry_logprobs,
    ordered_map,
    server_options,
    token_logprobs,
)
from quantmatrix.backends.openai_stream import chunk_text, merge_chunks

if TYPE_CHECKING:
    from quantmatrix.config import ModelSpec, Study
    from quantmatrix.models.ladder import Variant


def openai_timing(reply: dict[str, Any], wall_s: float, server_s: float | None = None) -> Timing:
    """Counts from ``usage``, native times from a llama-server ``timings`` object if present."""
    usage = reply.get("usage") or {}
    timings = reply.get("timings")
    timings = timings if isinstance(timings, dict) else {}
    prompt_ms, predicted_ms = timings.get("prompt_ms"), timings.get("predicted_ms")
    prompt_n, predicted_n = timings.get("prompt_n"), timings.get("predicted_n")
    return Timing(
        prompt_tokens=int(usage.get("prompt_tokens") or prompt_n or 0),
        generated_tokens=int(usage.get("completion_tokens") or predicted_n or 0),
        wall_s=wall_s,
        prompt_eval_s=None if prompt_ms is None else float(prompt_ms) / 1000.0,
        decode_s=None if predicted_ms is None else float(predicted_ms) / 1000.0,
        decode_tokens=None if predicted_n is None else int(predicted_n),
        server_s=server_s,
    )


def _logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...] | None:
    """Chat (``{"content": [...]}``) or completion (``tokens``/``token_logprobs``) logprobs."""
    raw = choice.get("logprobs")
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("content"), list):
        return entry_logprobs(raw["content"])
    tokens, values = raw.get("tokens"), raw.get("token_logprobs")
    if isinstance(tokens, list) and isinstance(values, list):
        return token_logprobs(zip(tokens, values, strict=False))
    return None


def _server_s(headers: httpx.Headers) -> float | None:
    """The ``openai-processing-ms`` header in seconds (None when absent or not a number)."""
    value = headers.get("openai-processing-ms")
    try:
        return None if value is None else float(value) / 1000.0
    except ValueError:
        return None


class OpenAIBackend:
    """Generate with one model of an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def __init__(self, base_url: str, model: str, options: ServerOptions) -> None:
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[:-3]
        self.model = model
        self.options = options
        hint = "start the server or fix --endpoint"
        self.client = JsonClient("OpenAI-compatible server", self.base_url, options, hint)
        self.capabilities = Capabilities(
            logprobs=options.logprobs, max_in_flight=max(1, options.in_flight), native_timing=False
        )
        self._ask_logprobs = options.logprobs

    def _body(self, request: GenerationRequest, stops: list[str]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
            "repeat_penalty": 1.0,
            "stream": self.options.stream,
        }
        if self.options.stream:
            body["stream_options"] = {"include_usage": True}
        if request.temperature == 0:
            body["top_k"] = 1
        if stops:
            body["stop"] = stops
        if not self.options.chat:
            if self._ask_logprobs:
                body["logprobs"] = 1
            return "/v1/completions", {**body, "prompt": request.prompt}
        if self._ask_logprobs:
            body.update(logprobs=True, top_logprobs=1)
        messages = [{"role": "user", "content": request.prompt}]
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        return "/v1/chat/completions", {**body, "messages": messages}

    def _refuses_logprobs(self, status: int, detail: str) -> bool:
        return self._ask_logprobs and "logprob" in detail.lower()

    def _post(self, request: GenerationRequest, stops: list[str]) -> tuple[Any, httpx.Headers]:
        path, body = self._body(request, stops)
        try:
            return self.client.request("POST", path, body, fatal=self._refuses_logprobs)
        except ServerReplyError as exc:
            if self._refuses_logprobs(exc.status, exc.detail):
                self._ask_logprobs = False
                self.capabilities = dataclasses.replace(self.capabilities, logprobs=False)
                return self._post(request, stops)
            raise self._reply_error(exc) from None

    def _reply_error(self, exc: ServerReplyError) -> BackendError:
        detail = exc.detail.lower()
        if exc.status == 404 or "model_not_found" in detail or "does not exist" in detail:
            return BackendError(
                f"OpenAI-compatible server at {self.base_url} has no model {self.model!r}; "
                "see its /v1/models or fix --model"
            )
        return exc

    def _stream(self, request: GenerationRequest, stops: list[str]) -> tuple[Any, Timing]:
        path, body = self._body(request, stops)
        try:
            streamed = self.client.stream(path, body, sse=True, fatal=self._refuses_logprobs)
        except ServerReplyError as exc:
            if self._refuses_logprobs(exc.status, exc.detail):
                self._ask_logprobs = False
                self.capabilities = dataclasses.replace(self.capabilities, logprobs=False)
                return self._stream(request, stops)
            raise self._reply_error(exc) from None
        chunks = [c for c in streamed.objects if "choices" in c or "usage" in c]
        reply = merge_chunks(chunks, self.options.chat)
        ttft = streamed.first_arrival(lambda c: bool(chunk_text(c, self.options.chat)))
        timing = dataclasses.replace(openai_timing(reply, streamed.wall_s), ttft_s=ttft)
        return reply, timing

    def _plain(self, request: GenerationRequest, stops: list[str]) -> tuple[Any, Timing]:
        started = time.perf_counter()
        reply, headers = self._post(request, stops)
        wall = time.perf_counter() - started
        if not isinstance(reply, dict):
            return reply, Timing(0, 0, wall)
        return reply, openai_timing(reply, wall, _server_s(headers))

    def _call(self, request: GenerationRequest, stops: list[str]) -> tuple[dict[str, Any], Timing]:
        ask = self._stream if self.options.stream else self._plain
        reply, timing = ask(request, stops)
        if not isinstance(reply, dict) or not reply.get("choices"):
            raise BackendError(f"OpenAI-compatible server at {self.base_url} sent no choices")
        return reply, timing

    def _text(self, choice: dict[str, Any]) -> str:
        if self.options.chat:
            return str((choice.get("message") or {}).get("content") or "")
        return str(choice.get("text") or "")

    def _one(self, request: GenerationRequest) -> GenerationResult:
        def ask(stops: list[str]) -> tuple[str, str, tuple[dict[str, Any], Timing]]:
            reply, timing = self._call(request, stops)
            choice = reply["choices"][0]
            text = self._text(choice)
            return text, str(choice.get("finish_reason") or "stop"), (reply, timing)

        text, finish, (reply, timing) = answer_first_line(request, ask)
        logprobs = _logprobs(reply["choices"][0])
        if timing.native_s is not None and not self.capabilities.native_timing:
            self.capabilities = dataclasses.replace(self.capabilities, native_timing=True)
        return GenerationResult(request.key, text, finish, timing, logprobs=logprobs)

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        """Answer ``requests`` (``options.in_flight`` at a time), yielding in request order."""
        return ordered_map(self._one, requests, self.options.in_flight)

    def info(self) -> dict[str, Any]:
        """Server details for the manifest (the model ids its ``/v1/models`` lists)."""
        info: dict[str, Any] = {
            "engine": "OpenAI-compatible server",
            "endpoint": self.base_url,
            "model": self.model,
            "chat_template": self.options.chat,
            "in_flight": self.options.in_flight,
            "native_timing": self.capabilities.native_timing,
        }
        if self.options.kv_cache is not None:  # --cache-type-k/-v, as the study names it
            info["kv_cache"] = {"type": self.options.kv_cache, "set_by": "the server"}
        try:
            listing = self.client.get("/v1/models")
        except BackendError as exc:
            info["error"] = str(exc)
            return info
        info["server_models"] = [m.get("id") for m in listing.get("data") or []]
        return info

    def memory(self) -> MemoryReading | None:
        """Not measurable through the OpenAI API (the server's process is not ours)."""
        return None

    def close(self) -> None:
        self.client.close()


def create(variant: Variant, spec: ModelSpec, study: Study) -> OpenAIBackend:
    """The registry's factory: the variant's served model name at the model's endpoint.

    Log-probabilities are not asked for: llama_cpp.server computes them slowly in Python.
    """
    if spec.endpoint is None:  # the config refuses this; a spec built by hand may not
        raise BackendError(f"model {spec.name!r}: the openai backend needs an endpoint URL")
    options = server_options(spec, study, logprobs=False)
    return OpenAIBackend(spec.endpoint, spec.server_model(variant.level), options)
