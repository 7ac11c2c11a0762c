"""The Ollama backend against a local stand-in server (tests/ollama_standin.py), no Ollama."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from quantmatrix.backends import registry
from quantmatrix.backends.base import Backend, BackendError, GenerationRequest, TokenLogprob
from quantmatrix.backends.http import (
    ServerOptions,
    entry_logprobs,
    http_overhead_pct,
    letters_from_top_logprobs,
    ordered_map,
    token_logprobs,
)
from quantmatrix.backends.ollama import OllamaBackend
from quantmatrix.config import parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.tags import expand_ollama_family
from tests.conftest import fake_study_dict
from tests.ollama_standin import EVAL_NS_PER_TOKEN, PROMPT_NS_PER_TOKEN, OllamaStandIn

TAG = "tiny:q4_K_M"
FAST = ServerOptions(retries=2, backoff_s=0.01, timeout_s=5.0, context_length=1024, seed=7)


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    server = OllamaStandIn(registry={"tiny:q8_0": 5_000_000}).start()
    yield server
    server.stop()


def backend(server: OllamaStandIn, tag: str = TAG, **over: Any) -> OllamaBackend:
    options = ServerOptions(**{**FAST.__dict__, **over})
    return OllamaBackend(server.url, tag, options)


def req(key: str, prompt: str = "What is the capital of France?", **over: Any) -> GenerationRequest:
    return GenerationRequest(key=key, prompt=prompt, max_tokens=16, seed=3, **over)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_chat_request_fields_and_native_timing(standin: OllamaStandIn) -> None:
    b = backend(standin, keep_alive="10m")
    (result,) = b.generate([req("k1", system="Answer briefly.")])
    body = standin.bodies("/api/chat")[0]
    assert body["model"] == TAG and body["stream"] is True and body["keep_alive"] == "10m"
    assert body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert body["options"] == {
        "temperature": 0.0,
        "seed": 3,
        "num_predict": 16,
        "num_ctx": 1024,
        "repeat_penalty": 1.0,
        "top_k": 1,
    }
    assert body["logprobs"] is True
    assert result.text == "B. Paris\nBecause it is the capital." and result.finish_reason == "stop"
    n_prompt = 8  # the stand-in counts the words of the system and user messages
    t = result.timing
    assert t.prompt_tokens == n_prompt and t.generated_tokens == 7
    assert t.prompt_eval_s == pytest.approx(n_prompt * PROMPT_NS_PER_TOKEN / 1e9)
    assert t.decode_s == pytest.approx(7 * EVAL_NS_PER_TOKEN / 1e9)
    assert t.load_s == pytest.approx(0.05) and t.ttft_s is not None and 0 < t.ttft_s <= t.wall_s
    assert result.logprobs is not None  # typed, in the result itself, from every streamed chunk
    assert [e.logprob for e in result.logprobs] == pytest.approx([-0.1 * i for i in range(1, 8)])


def test_streamed_ttft_comes_before_the_last_token(standin: OllamaStandIn) -> None:
    standin.token_delay_s = 0.03  # before each of the 6 later tokens and the final object
    (result,) = backend(standin).generate([req("k")])
    t = result.timing
    assert t.ttft_s is not None and t.wall_s - t.ttft_s >= 6 * 0.03 * 0.9
    assert t.prompt_eval_s == pytest.approx(6 * PROMPT_NS_PER_TOKEN / 1e9)  # the engine's own
    assert result.text == "B. Paris\nBecause it is the capital."


def test_a_stream_broken_off_is_asked_again(standin: OllamaStandIn) -> None:
    standin.faults.append("cut")
    (result,) = backend(standin).generate([req("a")])
    assert result.text.startswith("B. Paris") and len(standin.bodies("/api/chat")) == 2


def test_letter_probabilities_from_the_first_tokens_top_logprobs(standin: OllamaStandIn) -> None:
    b = backend(standin)
    assert b.capabilities.letter_probs
    plain, with_letters = b.generate([req("a"), req("b", letter_count=4)])
    bodies = standin.bodies("/api/chat")
    assert "top_logprobs" not in bodies[0] and bodies[1]["top_logprobs"] == 20
    assert plain.letter_probs is None and with_letters.text == plain.text
    # the first token is "B." in the stand-in: no letter form; "C" counts, "Z" is no option
    assert with_letters.letter_probs == pytest.approx((0.0, 0.0, math.exp(-3.0), 0.0))
    no_logprobs = backend(standin, logprobs=False)
    assert not no_logprobs.capabilities.letter_probs
    (r,) = no_logprobs.generate([req("c", letter_count=4)])
    assert r.letter_probs is None and "top_logprobs" not in standin.bodies("/api/chat")[-1]


def test_letters_from_top_logprobs() -> None:
    top = [{"token": "A", "logprob": -0.5}, {"token": " A", "logprob": -1.0},
           {"token": "A", "logprob": -0.5}, {"token": "(B", "logprob": -2.0},
           {"token": " C", "logprob": -3.0}, {"token": "E", "logprob": -0.1},
           {"token": 7, "logprob": -0.1}]  # fmt: skip
    got = letters_from_top_logprobs(top, 4)  # a repeated token counts once; E is no option
    assert got == pytest.approx((math.exp(-0.5) + math.exp(-1.0), 0.0, math.exp(-3.0), 0.0))


def test_token_logprobs_are_typed_or_none() -> None:
    got = entry_logprobs([{"token": "B", "logprob": -0.5}, {"token": ".", "logprob": -1}])
    assert got == (TokenLogprob("B", -0.5), TokenLogprob(".", -1.0))
    assert entry_logprobs([{"token": "B", "logprob": None}]) is None  # no half lists
    assert entry_logprobs(["B"]) is None and entry_logprobs(None) is None
    assert token_logprobs(zip(["a", "b"], [-0.1, -0.2], strict=True)) == (
        TokenLogprob("a", -0.1),
        TokenLogprob("b", -0.2),
    )


def test_raw_generate_and_line_end(standin: OllamaStandIn) -> None:
    b = backend(standin, chat=False)
    (result,) = b.generate([req("k", system="ignored in raw mode", stop_at_line_end=True)])
    body = standin.bodies("/api/generate")[0]
    assert body["raw"] is True and "system" not in body and body["prompt"].startswith("What")
    assert body["options"]["stop"] == ["\n"]
    assert result.text == "B. Paris" and result.finish_reason == "stop"


def test_line_end_after_a_blank_first_line(standin: OllamaStandIn) -> None:
    standin.reply = lambda body: "\n\n  C\nmore"
    (result,) = backend(standin).generate([req("k", stop_at_line_end=True)])
    first, second = standin.bodies("/api/chat")
    assert first["options"]["stop"] == ["\n"] and "stop" not in second["options"]
    assert result.text == "C" and result.finish_reason == "stop"


def test_pull_with_progress_then_ps_memory(standin: OllamaStandIn) -> None:
    b = backend(standin, tag="tiny:q8_0")
    assert b.memory() is None
    assert b.ensure_model(show_progress=False) is True
    assert b.ensure_model(show_progress=False) is False
    assert standin.bodies("/api/pull") == [{"model": "tiny:q8_0", "stream": True}]
    list(b.generate([req("a")]))
    reading = b.memory()
    assert reading is not None and reading.peak_bytes == 5_000_000
    assert reading.extra["size_vram"] == 0 and "/api/ps" in reading.source


def test_pull_of_an_unknown_tag_is_one_line(standin: OllamaStandIn) -> None:
    with pytest.raises(BackendError) as err:
        backend(standin, tag="nope:fp16").ensure_model(show_progress=False)
    assert "could not pull 'nope:fp16'" in str(err.value) and "\n" not in str(err.value)


def test_unknown_tag_is_one_clear_line(standin: OllamaStandIn) -> None:
    with pytest.raises(BackendError) as err:
        list(backend(standin, tag="missing:q4_0").generate([req("a")]))
    message = str(err.value)
    assert "no model 'missing:q4_0'" in message and "ollama pull missing:q4_0" in message
    assert "\n" not in message and len(standin.bodies("/api/chat")) == 1  # 404: no retries


@pytest.mark.parametrize("fault", ["500", "malformed", "drop"])
def test_transient_faults_are_retried(standin: OllamaStandIn, fault: str) -> None:
    standin.faults.extend([fault, fault])
    (result,) = backend(standin).generate([req("a")])
    assert result.text.startswith("B. Paris") and len(standin.bodies("/api/chat")) == 3


def test_timeout_is_retried(standin: OllamaStandIn) -> None:
    standin.hang_s = 0.4
    standin.faults.append("hang")
    (result,) = backend(standin, timeout_s=0.15).generate([req("a")])
    assert result.text.startswith("B.")


def test_persistent_500_ends_in_one_line_after_retries(standin: OllamaStandIn) -> None:
    standin.faults.extend(["500"] * 3)
    with pytest.raises(BackendError) as err:
        list(backend(standin).generate([req("a")]))
    assert "failed with HTTP 500" in str(err.value) and "(3 tries)" in str(err.value)


def test_unreachable_host_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    b = OllamaBackend(url, TAG, ServerOptions(retries=1, backoff_s=0.01))
    with pytest.raises(BackendError) as err:
        list(b.generate([req("a")]))
    assert str(err.value) == (
        f"ollama at {url} is unreachable (connection refused) (2 tries); "
        "start it with `ollama serve` or fix --endpoint"
    )


def test_server_dying_mid_run_keeps_yielded_results(standin: OllamaStandIn) -> None:
    b = backend(standin)
    got = []
    with pytest.raises(BackendError, match="unreachable"):
        for result in b.generate([req(f"k{i}") for i in range(5)]):
            got.append(result.key)
            if len(got) == 2:
                standin.stop()
    assert got == ["k0", "k1"]


def test_in_flight_keeps_request_order(standin: OllamaStandIn) -> None:
    standin.reply = lambda body: f"answer {body['messages'][-1]['content']}"
    standin.delay_s = lambda body: 0.02 * (6 - int(body["messages"][-1]["content"]))
    b = backend(standin, in_flight=3)
    assert b.capabilities.max_in_flight == 3
    results = list(b.generate([req(f"k{i}", prompt=str(i)) for i in range(6)]))
    assert [r.key for r in results] == [f"k{i}" for i in range(6)]
    assert [r.text for r in results] == [f"answer {i}" for i in range(6)]
    assert standin.max_active >= 2


def test_sequential_when_one_in_flight(standin: OllamaStandIn) -> None:
    standin.delay_s = lambda body: 0.01
    list(backend(standin).generate([req(f"k{i}") for i in range(4)]))
    assert standin.max_active == 1


def test_ordered_map_raises_after_earlier_results() -> None:
    def slow_fail(i: int) -> int:
        if i == 2:
            raise BackendError("boom")
        time.sleep(0.01)
        return i

    got: list[int] = []
    with pytest.raises(BackendError):
        got.extend(ordered_map(slow_fail, range(6), 3))
    assert got == [0, 1]


def test_info_and_factory(standin: OllamaStandIn) -> None:
    model = {"name": "tiny", "backend": "ollama", "endpoint": standin.url, "source": "tiny",
             "levels": ["Q4_K_M"]}  # fmt: skip
    study = parse_study(fake_study_dict(models=[model]))
    spec, variant = study.models[0], Variant("tiny", "Q4_K_M", None, None, TAG, "ollama", False)
    b = registry.create("ollama", variant, spec, study)
    assert isinstance(b, Backend) and isinstance(b, OllamaBackend)
    info = b.info()
    assert info["ollama_version"] == "0.12.11" and info["details"]["quantization_level"] == "Q4_K_M"
    with pytest.raises(BackendError):  # the registry refuses an unknown name
        registry.create("vllm", variant, spec, study)


def test_expand_family_and_overhead() -> None:
    tags = expand_ollama_family("llama3.2:1b-instruct", ["F16", "Q8_0", "Q4_K_M"])
    assert tags == {
        "F16": "llama3.2:1b-instruct-fp16",
        "Q8_0": "llama3.2:1b-instruct-q8_0",
        "Q4_K_M": "llama3.2:1b-instruct-q4_K_M",
    }
    assert expand_ollama_family("qwen2.5", ["Q3_K_S"]) == {"Q3_K_S": "qwen2.5:q3_K_S"}
    with pytest.raises(ValueError):
        expand_ollama_family("x:y", ["Q9_Z"])
    assert http_overhead_pct(1.1, 1.0) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        http_overhead_pct(1.0, 0.0)
