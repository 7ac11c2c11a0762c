"""The OpenAI-compatible backend streaming server-sent events from the local stand-in (no model):
text, finish reason, usage, a client-side TTFT, retries of a broken stream, the plain path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quantmatrix.backends.base import GenerationRequest
from quantmatrix.backends.http import ServerOptions
from quantmatrix.backends.http_stream import stream_object
from quantmatrix.backends.openai_compat import OpenAIBackend
from quantmatrix.backends.openai_stream import merge_chunks
from tests.ollama_standin import OllamaStandIn

TAG = "tiny:q4_K_M"
FAST = ServerOptions(retries=2, backoff_s=0.01, timeout_s=5.0, logprobs=False)


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    server = OllamaStandIn().start()
    yield server
    server.stop()


def backend(server: OllamaStandIn, **over: object) -> OpenAIBackend:
    return OpenAIBackend(f"{server.url}/v1", TAG, ServerOptions(**{**FAST.__dict__, **over}))


def req(key: str, **over: object) -> GenerationRequest:
    return GenerationRequest(key, "What is the capital of France?", 16, **over)  # type: ignore[arg-type]


def test_streamed_chat_has_text_usage_and_a_sane_ttft(standin: OllamaStandIn) -> None:
    standin.token_delay_s = 0.03
    (result,) = backend(standin).generate([req("k")])
    body = standin.bodies("/v1/chat/completions")[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert result.text == "B. Paris\nBecause it is the capital." and result.finish_reason == "stop"
    t = result.timing
    assert t.prompt_tokens == 6 and t.generated_tokens == 7 and t.server_s is None
    assert t.ttft_s is not None and t.ttft_s > 0 and t.wall_s - t.ttft_s >= 7 * 0.03 * 0.9


def test_streamed_completion_and_line_end(standin: OllamaStandIn) -> None:
    (result,) = backend(standin, chat=False).generate([req("k", stop_at_line_end=True)])
    body = standin.bodies("/v1/completions")[0]
    assert body["prompt"].startswith("What") and body["stop"] == ["\n"]
    assert result.text == "B. Paris" and result.finish_reason == "stop"
    assert result.timing.ttft_s is not None


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_a_stream_cut_after_its_finish_reason_is_asked_again(
    standin: OllamaStandIn, path: str
) -> None:
    """Cut after the chunk with the finish reason, before the usage chunk and ``[DONE]`` (or
    before Ollama's final metrics): not a whole answer, so it is asked again, and its token
    counts are the server's, not a guess from a broken stream."""
    from quantmatrix.backends.ollama import OllamaBackend

    standin.faults.extend(["cut_tail"])
    if path.startswith("/v1/"):
        (result,) = backend(standin).generate([req("a")])
    else:
        (result,) = OllamaBackend(standin.url, TAG, FAST).generate([req("a")])
    assert len(standin.bodies(path)) == 2
    assert result.timing.prompt_tokens == 6 and result.timing.generated_tokens == 7


def test_a_broken_stream_is_asked_again_and_plain_requests_have_no_ttft(
    standin: OllamaStandIn,
) -> None:
    standin.faults.extend(["cut", "drop"])
    (result,) = backend(standin).generate([req("a")])
    assert result.text.startswith("B. Paris") and len(standin.bodies("/v1/chat/completions")) == 3
    (plain,) = backend(standin, stream=False).generate([req("b")])
    assert plain.text == result.text and plain.timing.ttft_s is None
    assert plain.timing.generated_tokens == 7
    assert standin.bodies("/v1/chat/completions")[-1]["stream"] is False


def test_sse_lines_and_merged_chunks() -> None:
    assert stream_object(": ping", sse=True) is None and stream_object("", sse=True) is None
    assert stream_object("data: [DONE]", sse=True) == {"[DONE]": True}
    chunks = [
        {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]},
        {"choices": [{"delta": {"content": "Hi"}, "logprobs": {"content": [
            {"token": "Hi", "logprob": -0.5}]}, "finish_reason": None}]},
        {"choices": [{"delta": {}, "finish_reason": "length"}], "timings": {"prompt_ms": 4.0}},
    ]  # fmt: skip
    reply = merge_chunks(chunks, chat=True)
    choice = reply["choices"][0]
    assert choice["message"]["content"] == "Hi" and choice["finish_reason"] == "length"
    assert choice["logprobs"] == {"content": [{"token": "Hi", "logprob": -0.5}]}
    assert reply["usage"] == {"prompt_tokens": 0, "completion_tokens": 1}  # none sent: counted
    assert reply["timings"] == {"prompt_ms": 4.0}
