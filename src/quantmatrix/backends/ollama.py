"""The Ollama backend: one tag served by a running ``ollama serve``, through its native API.

Generation goes through ``/api/chat`` (``chat=True``: Ollama applies the model's template) or
``/api/generate`` with ``raw=true`` (``chat=False``: the prompt as is). Decoding is greedy:
temperature 0, ``top_k`` 1, repeat penalty 1.0, the request's seed; ``num_predict`` and
``num_ctx`` are set on every request. Replies are streamed (NDJSON, ``stream=true``): the
client-side time to first token (``ttft_s``) is the arrival of the first object with content,
the wall time runs to the final object, which carries Ollama's usage metrics.

Native timing comes from Ollama's own counters (nanoseconds): ``prompt_eval_duration`` (the
engine's prompt-eval time, kept beside the client TTFT), ``eval_duration``, ``load_duration``,
``prompt_eval_count``, ``eval_count``.

Log-probabilities (Ollama >= 0.12.11) are requested when ``options.logprobs`` and returned in
``GenerationResult.logprobs`` (one :class:`TokenLogprob` per generated token, gathered from
every streamed object that carries some).
For a request with ``letter_count`` the 20 top alternatives of the first generated token are
asked for too (``top_logprobs``), and the option letters' probabilities are read from them
(:func:`http.letters_from_top_logprobs`; a letter outside the top 20 counts 0). Ollama computes
them by a softmax over the raw logits (divided by the temperature only when it is above 0), so
greedy ``top_k`` 1 does not truncate them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from quantmatrix.backends.base import (
    BackendError,
    Capabilities,
    GenerationRequest,
    GenerationResult,
    MemoryReading,
    Timing,
)
from quantmatrix.backends.http import (
    TOP_LOGPROBS,
    JsonClient,
    ServerOptions,
    ServerReplyError,
    answer_first_line,
    entry_logprobs,
    letters_from_top_logprobs,
    one_line,
    ordered_map,
    server_options,
)
from quantmatrix.backends.http_stream import Streamed

if TYPE_CHECKING:
    from quantmatrix.config import ModelSpec, Study
    from quantmatrix.models.ladder import Variant

DEFAULT_ENDPOINT = "http://127.0.0.1:11434"
_NS = 1e9


def _seconds(reply: dict[str, Any], key: str) -> float | None:
    value = reply.get(key)
    return None if value is None else float(value) / _NS


def ollama_timing(reply: dict[str, Any], wall_s: float) -> Timing:
    """Native timing from Ollama's final object (durations in ns); wall from the client."""
    generated = int(reply.get("eval_count") or 0)
    return Timing(
        prompt_tokens=int(reply.get("prompt_eval_count") or 0),
        generated_tokens=generated,
        wall_s=wall_s,
        prompt_eval_s=_seconds(reply, "prompt_eval_duration"),
        decode_s=_seconds(reply, "eval_duration"),
        decode_tokens=generated,
        load_s=_seconds(reply, "load_duration"),
    )


def _first_top(reply: dict[str, Any]) -> list[dict[str, Any]] | None:
    entries = reply.get("logprobs")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return None
    top = entries[0].get("top_logprobs")
    return top if isinstance(top, list) else None


class OllamaBackend:
    """Generate with one Ollama tag; see the module docstring for what is sent and measured."""

    name = "ollama"

    def __init__(self, endpoint: str, tag: str, options: ServerOptions) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.tag = tag
        self.options = options
        hint = "start it with `ollama serve` or fix --endpoint"
        self.client = JsonClient("ollama", self.endpoint, options, hint)
        self.capabilities = Capabilities(
            logprobs=options.logprobs,
            letter_probs=options.logprobs,
            max_in_flight=max(1, options.in_flight),
            native_timing=True,
        )
        self._peak: MemoryReading | None = None

    # -- generation ---------------------------------------------------------------------------

    def _body(self, request: GenerationRequest, stops: list[str]) -> tuple[str, dict[str, Any]]:
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "seed": request.seed,
            "num_predict": request.max_tokens,
            "num_ctx": self.options.context_length,
            "repeat_penalty": 1.0,
        }
        if request.temperature == 0:
            options["top_k"] = 1
        if stops:
            options["stop"] = stops
        body: dict[str, Any] = {"model": self.tag, "stream": True, "options": options}
        body["keep_alive"] = self.options.keep_alive
        if self.options.logprobs:
            body["logprobs"] = True
            if request.letter_count > 0:
                body["top_logprobs"] = TOP_LOGPROBS
        if not self.options.chat:
            return "/api/generate", {**body, "prompt": request.prompt, "raw": True}
        messages = [{"role": "user", "content": request.prompt}]
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        return "/api/chat", {**body, "messages": messages}

    def _call(self, request: GenerationRequest, stops: list[str]) -> tuple[dict[str, Any], Timing]:
        """One streamed request: the reply merged into the shape of a non-streamed one (text,
        all logprobs, the final object's metrics) and its timing, with the client TTFT."""
        path, body = self._body(request, stops)
        try:
            streamed = self.client.stream(path, body)
        except ServerReplyError as exc:
            raise self._reply_error(exc) from None
        reply = self._merge(streamed)
        ttft = streamed.first_arrival(lambda obj: bool(self._text(obj)))
        timing = dataclasses.replace(ollama_timing(reply, streamed.wall_s), ttft_s=ttft)
        return reply, timing

    def _merge(self, streamed: Streamed) -> dict[str, Any]:
        failed = next((o for o in streamed.objects if "error" in o), None)
        if failed is not None:
            raise BackendError(f"ollama at {self.endpoint} failed: {one_line(failed['error'])}")
        text = "".join(self._text(obj) for obj in streamed.objects)
        logprobs: list[Any] = []
        for obj in streamed.objects:
            logprobs += obj.get("logprobs") or []
        reply = {**streamed.objects[-1], "logprobs": logprobs or None}
        if self.options.chat:
            return {**reply, "message": {"role": "assistant", "content": text}}
        return {**reply, "response": text}

    def _reply_error(self, exc: ServerReplyError) -> BackendError:
        if exc.status == 404 or "not found" in exc.detail.lower():
            return BackendError(
                f"ollama at {self.endpoint} has no model {self.tag!r}; pull it with "
                f"`ollama pull {self.tag}` (or let quantmatrix pull it) or fix the tag"
            )
        return exc

    def _text(self, reply: dict[str, Any]) -> str:
        if self.options.chat:
            return str((reply.get("message") or {}).get("content") or "")
        return str(reply.get("response") or "")

    def _one(self, request: GenerationRequest) -> GenerationResult:
        def ask(stops: list[str]) -> tuple[str, str, tuple[dict[str, Any], Timing]]:
            reply, timing = self._call(request, stops)
            return self._text(reply), str(reply.get("done_reason") or "stop"), (reply, timing)

        text, finish, (reply, timing) = answer_first_line(request, ask)
        letters = None
        top = _first_top(reply) if request.letter_count > 0 else None
        if top is not None:
            letters = letters_from_top_logprobs(top, request.letter_count)
        logprobs = entry_logprobs(reply.get("logprobs"))
        return GenerationResult(
            request.key, text, finish, timing, letter_probs=letters, logprobs=logprobs
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        """Answer ``requests`` (``options.in_flight`` at a time), yielding in request order."""
        yield from ordered_map(self._one, requests, self.options.in_flight)
        self._observe_memory()

    # -- model management, memory, info -------------------------------------------------------

    def has_model(self) -> bool:
        """Whether the server has the tag locally (``/api/tags``)."""
        return self._tag_entry() is not None

    def _tag_entry(self) -> dict[str, Any] | None:
        models = self.client.get("/api/tags").get("models") or []
        return _find(models, self.tag)

    def ensure_model(self, show_progress: bool = True) -> bool:
        """Pull the tag when the server lacks it; True if it was pulled."""
        if self.has_model():
            return False
        pull_with_progress(self.client, self.tag, show_progress)
        return True

    def _observe_memory(self) -> MemoryReading | None:
        try:
            models = self.client.get("/api/ps").get("models") or []
        except BackendError:
            return self._peak
        entry = _find(models, self.tag)
        if entry is None:
            return self._peak
        size, vram = int(entry.get("size") or 0), int(entry.get("size_vram") or 0)
        if self._peak is None or size > self._peak.peak_bytes:
            source = "ollama /api/ps: size of the loaded model (weights + KV cache + buffers)"
            self._peak = MemoryReading(size, source, {"size_vram": vram, "tag": self.tag})
        return self._peak

    def memory(self) -> MemoryReading | None:
        """Largest ``/api/ps`` size seen for this tag (read after each ``generate`` and now)."""
        return self._observe_memory()

    def info(self) -> dict[str, Any]:
        """Engine and model details for the manifest (``/api/version``, ``/api/tags``)."""
        info: dict[str, Any] = {
            "engine": "ollama (native API)",
            "endpoint": self.endpoint,
            "tag": self.tag,
            "chat_template": self.options.chat,
            "context_length": self.options.context_length,
            "keep_alive": self.options.keep_alive,
            "in_flight": self.options.in_flight,
        }
        if self.options.kv_cache is not None:  # OLLAMA_KV_CACHE_TYPE, as the study names it
            info["kv_cache"] = {"type": self.options.kv_cache, "set_by": "the server"}
        try:
            info["ollama_version"] = self.client.get("/api/version").get("version")
            entry = self._tag_entry() or {}
        except BackendError as exc:
            info["error"] = str(exc)
            return info
        info["digest"] = entry.get("digest")
        info["size"] = entry.get("size")
        info["details"] = entry.get("details")
        return info

    def close(self) -> None:
        self.client.close()


def create(variant: Variant, spec: ModelSpec, study: Study) -> OllamaBackend:
    """The registry's factory: the variant's tag on the model's server (default: the local
    one), pulled first when the server lacks it, so the study runner never knows about pulls."""
    options = server_options(spec, study, logprobs=True)
    endpoint = spec.endpoint or DEFAULT_ENDPOINT
    backend = OllamaBackend(endpoint, spec.server_model(variant.level), options)
    try:
        backend.ensure_model()
    except BaseException:
        backend.close()
        raise
    return backend


def pull_with_progress(client: JsonClient, tag: str, show_progress: bool = True) -> None:
    """``/api/pull`` the tag, following its streamed status lines with a progress bar."""
    from quantmatrix.progress import make_progress

    totals: dict[str, int] = {}
    done: dict[str, int] = {}
    status = ""
    with make_progress(show_progress) as progress:
        task = progress.add_task(f"pull {tag}", total=None)
        for line in client.stream_lines("/api/pull", {"model": tag, "stream": True}):
            if "error" in line:
                raise BackendError(f"ollama could not pull {tag!r}: {one_line(line['error'])}")
            status = str(line.get("status") or status)
            digest = line.get("digest")
            if digest and line.get("total"):
                totals[digest] = int(line["total"])
                done[digest] = int(line.get("completed") or 0)
            total = sum(totals.values()) or None
            progress.update(task, total=total, completed=sum(done.values()))
            progress.update(task, description=f"pull {tag}: {status.split(' sha256')[0]}")
    if status != "success":
        raise BackendError(f"ollama pull of {tag!r} ended without success (last: {status!r})")


def _find(models: list[dict[str, Any]], tag: str) -> dict[str, Any] | None:
    wanted = {tag, f"{tag}:latest"} if ":" not in tag else {tag}
    for entry in models:
        if entry.get("name") in wanted or entry.get("model") in wanted:
            return entry
    return None
