"""A streamed OpenAI-style answer (server-sent events) merged into a non-streamed one.

Chunks carry the text in ``choices[0].delta.content`` (chat) or ``choices[0].text``
(completions), logprobs per chunk, the finish reason on the last choice; ``usage`` arrives in a
chunk of its own when the request asked for it (``stream_options.include_usage``: llama-server,
vLLM, OpenAI) and llama-server adds its ``timings`` to the last chunk. A server that sends no
usage (llama-cpp-python's ``llama_cpp.server``) leaves the prompt's token count unknown (0) and
the reply's counted as its chunks with text (one per token on that server).
"""

from __future__ import annotations

from typing import Any


def chunk_text(chunk: dict[str, Any], chat: bool) -> str:
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    if chat:
        return str((choices[0].get("delta") or {}).get("content") or "")
    return str(choices[0].get("text") or "")


def _logprobs(chunks: list[dict[str, Any]]) -> dict[str, Any] | None:
    content: list[Any] = []
    tokens: list[Any] = []
    values: list[Any] = []
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            raw = choice.get("logprobs") if isinstance(choice, dict) else None
            if not isinstance(raw, dict):
                continue
            content += raw.get("content") or []
            tokens += raw.get("tokens") or []
            values += raw.get("token_logprobs") or []
    if content:
        return {"content": content}
    return {"tokens": tokens, "token_logprobs": values} if tokens else None


def _last(chunks: list[dict[str, Any]], key: str) -> Any:
    return next((c[key] for c in reversed(chunks) if isinstance(c.get(key), dict)), None)


def merge_chunks(chunks: list[dict[str, Any]], chat: bool) -> dict[str, Any]:
    """The reply a non-streamed request would have had: one choice, usage, timings."""
    text = "".join(chunk_text(c, chat) for c in chunks)
    finish = None
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("finish_reason"):
                finish = choice["finish_reason"]
    usage = _last(chunks, "usage")
    if usage is None:
        usage = {"prompt_tokens": 0,
                 "completion_tokens": sum(1 for c in chunks if chunk_text(c, chat))}  # fmt: skip
    choice = {"finish_reason": finish, "logprobs": _logprobs(chunks)}
    choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
    return {"choices": [choice], "usage": usage, "timings": _last(chunks, "timings")}
