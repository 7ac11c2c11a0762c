"""The OpenAI-compatible backend against a real ``llama_cpp.server`` running SmolLM2-135M.

Greedy answers through the server must equal the embedded backend's on the same model and chat
template; a server killed mid-run must end ``generate`` with one clear line, and a rerun of the
remaining requests against a restarted server must complete the set: none lost, none twice.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quantmatrix.backends.base import BackendError, GenerationRequest
from quantmatrix.backends.http import ServerOptions
from quantmatrix.backends.openai_compat import OpenAIBackend

pytestmark = [pytest.mark.engine, pytest.mark.slow]

PROMPTS = [
    "What is the capital of France?",
    "Name a primary colour.",
    "Question: 2 + 2 = ?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer with the letter only.",
    "Write one word that rhymes with cat.",
    "Which planet is known as the red planet?",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` in a subprocess, on 127.0.0.1 at a fixed port."""

    def __init__(self, model: Path, port: int, log: Path) -> None:
        self.model, self.port, self.log = model, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model)]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "1024"]
        cmd += ["--n_threads", "1", "--n_threads_batch", "1"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        pytest.fail("llama_cpp.server did not come up in time")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def model_path() -> Path:
    from quantmatrix.models.sources import resolve_source

    return resolve_source("smollm2-135m-instruct", "smollm2-135m-instruct").path


@pytest.fixture(scope="module")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    srv = LlamaServer(model_path, free_port(), log)
    srv.start()
    yield srv
    srv.kill()


def requests() -> list[GenerationRequest]:
    return [
        GenerationRequest(f"p{i}", p, max_tokens=20, stop_at_line_end=i % 2 == 0, seed=42)
        for i, p in enumerate(PROMPTS)
    ]


def embedded_texts(model_path: Path, reqs: list[GenerationRequest]) -> dict[str, str]:
    from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions

    backend = LlamaCppBackend(model_path, LlamaCppOptions(context_length=1024, threads=1))
    try:
        return {r.key: r.text for r in backend.generate(reqs)}
    finally:
        backend.close()


def test_matches_embedded_and_resumes_after_a_crash(model_path: Path, server: LlamaServer) -> None:
    reqs = requests()
    expected = embedded_texts(model_path, reqs)
    options = ServerOptions(retries=1, backoff_s=0.05, timeout_s=60.0, logprobs=False)
    backend = OpenAIBackend(server.url, "smollm2", options)  # streamed (SSE)
    log: dict[str, str] = {}  # what the study runner appends as results arrive
    served: set[str] = set()  # keys whose result carries the server's own handling time
    with pytest.raises(BackendError) as err:
        for result in backend.generate(reqs):
            log[result.key] = result.text
            t = result.timing  # llama_cpp.server streams no usage: the reply's chunks counted
            assert t.ttft_s is not None and 0 < t.ttft_s <= t.wall_s and t.generated_tokens > 0
            assert t.server_s is None and t.native_s is None
            if len(log) == 2:
                server.kill()
    message = str(err.value)
    assert "is unreachable (connection refused)" in message and "\n" not in message
    assert list(log) == ["p0", "p1"]

    server.start()
    plain = OpenAIBackend(server.url, "smollm2", dataclasses.replace(options, stream=False))
    for result in plain.generate([r for r in reqs if r.key not in log]):
        assert result.key not in log, "a request answered twice"
        log[result.key] = result.text
        served |= {result.key} if result.timing.server_s is not None else set()
    assert log == expected
    assert served == set(expected) - {"p0", "p1"}  # the non-streamed requests


def test_logprobs_from_the_real_server(server: LlamaServer) -> None:
    backend = OpenAIBackend(server.url, "smollm2", ServerOptions(logprobs=True))
    (result,) = backend.generate([GenerationRequest("lp", PROMPTS[0], max_tokens=3)])
    entries = result.logprobs
    assert entries is not None
    assert len(entries) == result.timing.generated_tokens == 3
    assert all(e.logprob <= 0 for e in entries)
    assert "".join(e.token for e in entries) == result.text
