"""A scripted backend, registered like a real one, so the pipeline can be tested in milliseconds.

Its replies come from a script (a function of the request, or a key -> text mapping); its timings
are computed from token counts at fixed simulated speeds, so they are deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from quantmatrix.backends.base import (
    Capabilities,
    GenerationRequest,
    GenerationResult,
    MemoryReading,
    Timing,
)

Script = Callable[[GenerationRequest], str] | Mapping[str, str]


def hashed_letter_script(salt: str) -> Callable[[GenerationRequest], str]:
    """A reply that depends only on (salt, prompt): a letter from the prompt's own options."""

    def reply(request: GenerationRequest) -> str:
        options = [
            ln[0] for ln in request.prompt.splitlines() if ln[1:3] == ". " and ln[0].isupper()
        ]
        letters = options or ["A", "B", "C", "D"]
        pick = int(hashlib.sha256(f"{salt}|{request.prompt}".encode()).hexdigest(), 16)
        return letters[pick % len(letters)]

    return reply


class FakeBackend:
    name = "fake"

    def __init__(
        self,
        script: Script,
        prompt_tps: float = 400.0,
        decode_tps: float = 40.0,
        memory_bytes: int = 123_000_000,
        fail_on: Callable[[GenerationRequest], bool] | None = None,
    ) -> None:
        self.script = script
        self.prompt_tps = prompt_tps
        self.decode_tps_sim = decode_tps
        self.memory_bytes = memory_bytes
        self.fail_on = fail_on
        self.capabilities = Capabilities(logprobs=False, max_in_flight=1, native_timing=True)
        self.calls: list[GenerationRequest] = []

    def _text(self, request: GenerationRequest) -> str:
        if callable(self.script):
            return self.script(request)
        return self.script.get(request.key, "")

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        for request in requests:
            self.calls.append(request)
            if self.fail_on is not None and self.fail_on(request):
                raise RuntimeError(f"scripted failure on {request.key}")
            text = self._text(request)
            n_prompt = max(1, len(request.prompt.split()))
            n_gen = min(request.max_tokens, max(1, len(text.split())))
            prompt_s = n_prompt / self.prompt_tps
            decode_s = max(n_gen - 1, 0) / self.decode_tps_sim
            timing = Timing(
                prompt_tokens=n_prompt,
                generated_tokens=n_gen,
                wall_s=(prompt_s + decode_s) * 1.02,
                prompt_eval_s=prompt_s,
                decode_s=decode_s,
                decode_tokens=max(n_gen - 1, 0),
                ttft_s=prompt_s * 1.01,
            )
            yield GenerationResult(request.key, text, "stop", timing)

    def info(self) -> dict[str, Any]:
        return {"engine": "fake", "version": "1"}

    def memory(self) -> MemoryReading | None:
        return MemoryReading(self.memory_bytes, "fake")

    def close(self) -> None:
        pass
