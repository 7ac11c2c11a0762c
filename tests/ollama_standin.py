"""A STAND-IN for an Ollama server, for tests. It is not Ollama and runs no model.

It speaks the part of Ollama's documented HTTP API (docs/api.md of Ollama 0.12.x; ``logprobs``
as added in 0.12.11) that quantmatrix uses: ``/api/generate`` and ``/api/chat`` (non-streamed,
and streamed as NDJSON: one object per token with that token's logprobs, then the final object
with the metrics; options ``num_predict`` and ``stop``, ``raw``, durations in nanoseconds),
``/api/pull`` (streamed status lines), ``/api/ps``, ``/api/tags``, ``/api/version``, and error
bodies ``{"error": "..."}`` (404 for an unknown model). Replies are scripted, not generated.

It also answers the OpenAI-compatible ``/v1/chat/completions`` and ``/v1/completions`` for the
same models, non-streamed or streamed as server-sent events (``data: {chunk}`` lines, a usage
chunk when ``stream_options.include_usage``, then ``data: [DONE]``), as llama-server does.
``token_delay_s`` is slept before each streamed token after the first, so a client's time to
first token is measurably shorter than its wall time.

Faults are scripted per generation request (``faults`` is consumed one entry per request to
``/api/generate`` or ``/api/chat``): ``"500"`` (HTTP 500), ``"malformed"`` (a body that is not
JSON), ``"drop"`` (close the connection without an answer), ``"hang"`` (answer after
``hang_s``), ``"cut"`` (a stream broken off after its first object), ``"cut_tail"`` (a
stream broken off before its last object: the final metrics, or the usage chunk and
``[DONE]``); ``"ok"`` answers normally. :meth:`OllamaStandIn.stop` kills the server for good.

``unsteady = True`` makes it nondeterministic at temperature 0, as a server that batches or
caches differently from one request to the next may be: the n-th time (n > 1) the same prompt
is asked of the same model, the reply gets n - 1 extra words " again" and every logprob moves
by -0.001 (n - 1).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standin_server import LocalServer

VERSION = "0.12.11"
PROMPT_NS_PER_TOKEN = 2_000_000
EVAL_NS_PER_TOKEN = 25_000_000
LOAD_NS_FIRST = 50_000_000
LOAD_NS_WARM = 100_000


def default_reply(body: dict[str, Any]) -> str:
    return "B. Paris\nBecause it is the capital."


def tokens_of(text: str) -> list[str]:
    """The stand-in's "tokens": runs of non-space with the whitespace before them."""
    return re.findall(r"\s*\S+|\s+$", text)


def prompt_of(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


class OllamaStandIn(LocalServer):
    """The stand-in's state; :meth:`start` serves it on 127.0.0.1 at a free port."""

    def __init__(
        self,
        models: dict[str, int] | None = None,
        registry: dict[str, int] | None = None,
        reply: Callable[[dict[str, Any]], str] = default_reply,
        delay_s: Callable[[dict[str, Any]], float] | None = None,
    ) -> None:
        self.models = dict(models or {"tiny:q4_K_M": 100_000_000})
        self.registry = dict(registry or {})
        self.reply = reply
        self.delay_s = delay_s
        self.faults: deque[str] = deque()
        self.hang_s = 0.5
        self.token_delay_s = 0.0
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.unsteady = False
        self.asked: dict[tuple[str, str], int] = {}  # (model, prompt) -> times asked
        self.loaded: set[str] = set()
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> OllamaStandIn:
        self._serve(_Handler)
        return self

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.requests if p == path]

    # -- generation ---------------------------------------------------------------------------

    def generation(self, body: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """The reply's tokens and the final object's metrics for one request."""
        options = body.get("options") or {}
        again = self._again(body)
        tokens = tokens_of(self.reply(body) + " again" * again)
        limit = options.get("num_predict")
        done_reason = "stop"
        if isinstance(limit, int) and 0 <= limit < len(tokens):
            tokens, done_reason = tokens[:limit], "length"
        text = "".join(tokens)
        cuts = [text.find(s) for s in options.get("stop") or [] if s and s in text]
        if cuts:
            text, done_reason = text[: min(cuts)], "stop"
            tokens = tokens_of(text)
        model = body["model"]
        load_ns = LOAD_NS_WARM if model in self.loaded else LOAD_NS_FIRST
        self.loaded.add(model)
        n_prompt = len(prompt_of(body).split())
        final: dict[str, Any] = {
            "done": True,
            "done_reason": done_reason,
            "total_duration": load_ns + n_prompt * PROMPT_NS_PER_TOKEN,
            "load_duration": load_ns,
            "prompt_eval_count": n_prompt,
            "prompt_eval_duration": n_prompt * PROMPT_NS_PER_TOKEN,
            "eval_count": len(tokens),
            "eval_duration": len(tokens) * EVAL_NS_PER_TOKEN,
        }
        final["total_duration"] += final["eval_duration"]
        if body.get("logprobs") is True:
            final["logprobs"] = [
                {"token": t, "logprob": -0.1 * (i + 1) - 0.001 * again, "bytes": list(t.encode())}
                for i, t in enumerate(tokens)
            ]
            top = body.get("top_logprobs")
            if isinstance(top, int) and top > 0:  # the token, its spaced form, then letters
                for entry in final["logprobs"]:
                    t = entry["token"].strip()
                    shift = -0.001 * again
                    alts = [(t, entry["logprob"]), (f" {t}", -2.0 + shift), ("C", -3.0 + shift),
                            ("Z", -4.0 + shift)]  # fmt: skip
                    entry["top_logprobs"] = [
                        {"token": a, "logprob": lp, "bytes": list(a.encode())}
                        for a, lp in alts[:top]
                    ]
        return tokens, final

    def _again(self, body: dict[str, Any]) -> int:
        """How many times this prompt was asked of this model before (0 unless unsteady)."""
        key = (str(body.get("model")), prompt_of(body))
        with self.lock:
            seen = self.asked.get(key, 0)
            self.asked[key] = seen + 1
        return seen if self.unsteady else 0

    def tag_entry(self, name: str) -> dict[str, Any]:
        level = name.rsplit("-", 1)[-1].split(":")[-1].upper()
        return {
            "name": name,
            "model": name,
            "size": self.models[name],
            "digest": f"{abs(hash(name)):064x}"[:64],
            "details": {"format": "gguf", "family": "llama", "quantization_level": level},
        }


class _Handler(BaseHTTPRequestHandler):
    standin: OllamaStandIn
    cut = False
    cut_tail = False
    protocol_version = "HTTP/1.0"  # one request per connection: stop() really cuts clients off

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing -----------------------------------------------------------------------------

    def _send(self, status: int, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._release()  # the client may send its next request as soon as it has this
        self.wfile.write(data)

    def _release(self) -> None:
        """This request stops counting as active (once), before its last bytes are written, so
        a client that sends the next request on reading them never sees two at once."""
        if getattr(self, "held", False):
            self.held = False
            with self.standin.lock:
                self.standin.active -= 1

    def _stream(self, objects: list[dict[str, Any]], sse: bool = False) -> None:
        self.send_response(200)
        kind = "text/event-stream" if sse else "application/x-ndjson"
        self.send_header("Content-Type", kind)
        self.end_headers()
        for i, obj in enumerate(objects):
            if (i > 0 and self.cut) or (i == len(objects) - 1 and self.cut_tail):
                return  # the connection closes: a stream without its end
            if i > 0 and self.standin.token_delay_s:
                time.sleep(self.standin.token_delay_s)
            line = json.dumps(obj).encode()
            if i == len(objects) - 1 and not sse:
                self._release()
            self.wfile.write(b"data: " + line + b"\n\n" if sse else line + b"\n")
            self.wfile.flush()
        if sse:
            self._release()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        body = json.loads(raw or b"{}")
        return body if isinstance(body, dict) else {}

    # -- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        s = self.standin
        s.requests.append((self.path, {}))
        if self.path == "/api/version":
            self._send(200, {"version": VERSION})
        elif self.path == "/api/tags":
            self._send(200, {"models": [s.tag_entry(name) for name in s.models]})
        elif self.path == "/api/ps":
            entries = [
                {**s.tag_entry(n), "size_vram": 0, "expires_at": "2030-01-01T00:00:00Z"}
                for n in sorted(s.loaded)
                if n in s.models
            ]
            self._send(200, {"models": entries})
        else:
            self._send(404, {"error": f"{self.path} not found"})

    def do_POST(self) -> None:
        body = self._body()
        self.standin.requests.append((self.path, body))
        if self.path in ("/api/generate", "/api/chat", "/v1/chat/completions", "/v1/completions"):
            self._generation(body)
        elif self.path == "/api/pull":
            self._pull(str(body.get("model", "")))
        else:
            self._send(404, {"error": f"{self.path} not found"})

    def _generation(self, body: dict[str, Any]) -> None:
        s = self.standin
        fault = s.faults.popleft() if s.faults else "ok"
        self.cut, self.cut_tail = fault == "cut", fault == "cut_tail"
        if fault == "drop":
            return  # no answer at all: the client sees the connection close
        if fault == "hang":
            time.sleep(s.hang_s)
        if fault == "500":
            return self._send(500, {"error": "stand-in fault: internal server error"})
        if fault == "malformed":
            return self._send(200, b'{"model": "oops", "done": tr')
        if body.get("model") not in s.models:
            return self._send(404, {"error": f"model '{body.get('model')}' not found"})
        with s.lock:
            s.active += 1
            s.max_active = max(s.max_active, s.active)
        self.held = True
        try:
            if s.delay_s is not None:
                time.sleep(s.delay_s(body))
            if self.path.startswith("/v1/"):
                self._answer_openai(body)
            else:
                self._answer(body)
        finally:
            self._release()

    def _answer(self, body: dict[str, Any]) -> None:
        tokens, final = self.standin.generation(body)
        chat = self.path == "/api/chat"
        head = {"model": body["model"], "created_at": "2025-01-01T00:00:00Z"}

        def piece(text: str) -> dict[str, Any]:
            if chat:
                return {"message": {"role": "assistant", "content": text}}
            return {"response": text}

        if body.get("stream", True) is False:
            return self._send(200, {**head, **piece("".join(tokens)), **final})
        logprobs = final.pop("logprobs", None) or [None] * len(tokens)
        chunks = [{**head, **piece(t), "done": False} for t in tokens]
        for chunk, entry in zip(chunks, logprobs, strict=True):
            if entry is not None:  # Ollama streams each token's logprobs with it
                chunk["logprobs"] = [entry]
        self._stream([*chunks, {**head, **piece(""), **final}])

    def _answer_openai(self, body: dict[str, Any]) -> None:
        tokens, final = self.standin.generation(body)
        chat = self.path == "/v1/chat/completions"
        finish = final["done_reason"]
        usage = {"prompt_tokens": final["prompt_eval_count"],
                 "completion_tokens": final["eval_count"]}  # fmt: skip
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        head = {"id": "cmpl-standin", "model": body["model"], "created": 1735689600}

        def choice(text: str, reason: str | None, delta: bool) -> dict[str, Any]:
            if not chat:
                return {"index": 0, "text": text, "finish_reason": reason}
            key = "delta" if delta else "message"
            return {"index": 0, key: {"role": "assistant", "content": text},
                    "finish_reason": reason}  # fmt: skip

        if not body.get("stream"):
            reply = {**head, "choices": [choice("".join(tokens), finish, False)], "usage": usage}
            return self._send(200, reply)
        chunks = [{**head, "choices": [choice(t, None, True)]} for t in tokens]
        chunks.append({**head, "choices": [choice("", finish, True)]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**head, "choices": [], "usage": usage})
        self._stream(chunks, sse=True)

    def _pull(self, name: str) -> None:
        s = self.standin
        if name in s.models:
            return self._stream([{"status": "pulling manifest"}, {"status": "success"}])
        if name not in s.registry:
            missing = {"error": "pull model manifest: file does not exist"}
            return self._stream([{"status": "pulling manifest"}, missing])
        size = s.registry[name]
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        for digest, total in (("sha256:aa11", size - 1000), ("sha256:bb22", 1000)):
            for done in (0, total // 2, total):
                line = {"status": f"pulling {digest}", "digest": digest, "total": total}
                lines.append({**line, "completed": done})
        lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}]
        s.models[name] = size
        self._stream([*lines, {"status": "success"}])
