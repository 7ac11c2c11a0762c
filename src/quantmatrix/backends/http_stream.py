"""Streamed answers of the server backends: NDJSON lines (Ollama) or server-sent events
(OpenAI-compatible servers), each object with its arrival time (:class:`Streamed`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

SSE_DONE = "[DONE]"


def json_object(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        flat = " ".join(raw.split())
        raise ValueError(f"expected a JSON object, got {flat[:80]}")
    return value


@dataclass(frozen=True)
class Streamed:
    """A streamed answer: its objects in order, each one's arrival (seconds from sending the
    request), the reply headers, and the wall time until the stream ended."""

    objects: list[dict[str, Any]]
    arrivals: list[float]
    headers: httpx.Headers
    wall_s: float

    def first_arrival(self, has_content: Callable[[dict[str, Any]], bool]) -> float | None:
        """When the first object with content arrived (the client-side time to first token)."""
        return next((t for o, t in zip(self.objects, self.arrivals, strict=True)
                     if has_content(o)), None)  # fmt: skip


def stream_object(raw: str, sse: bool) -> dict[str, Any] | None:
    """One NDJSON line or SSE ``data:`` line as an object (None: nothing to keep)."""
    line = raw.strip()
    if not line:
        return None
    if sse:
        if not line.startswith("data:"):
            return None  # comments (": ping"), event names, ids
        line = line[len("data:") :].strip()
        if line == SSE_DONE:
            return {SSE_DONE: True}
    return json_object(line)


def stream_complete(objects: list[dict[str, Any]], sse: bool) -> bool:
    """Whether a stream reached its end: Ollama's final ``"done": true`` object, or the SSE
    ``data: [DONE]`` every OpenAI-compatible server ends a stream with (llama-server,
    llama_cpp.server, vLLM, OpenAI). A choice's finish reason is not the end: the usage chunk
    and llama-server's timings come after it, and a stream cut there would log a guessed
    token count."""
    if not objects:
        return False
    if not sse:
        return objects[-1].get("done") is True or "error" in objects[-1]
    return any(SSE_DONE in obj for obj in objects)
