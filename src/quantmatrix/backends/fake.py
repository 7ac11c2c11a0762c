"""A scripted backend, registered like a real one, so the pipeline can be tested in milliseconds.

Its replies come from a script (a function of the request, or a key -> text mapping), and its
option-letter probabilities, when it is given them, from another; its timings are computed from
token counts at fixed simulated speeds, so they are deterministic. ``batch_size`` above 1 with a
``batched`` script (and ``batched_letters``) scripts what decoding together changes: requests
that come with a batch group are answered from those, one at a time (the timing phase) from
the plain ones, as the embedded engine's batched and single-stream paths may differ.
:class:`Unsteady` scripts the opposite: backends that answer differently once a variant's
backend is opened again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from quantmatrix.backends.base import (
    Capabilities,
    GenerationRequest,
    GenerationResult,
    MemoryReading,
    Timing,
)

if TYPE_CHECKING:
    from quantmatrix.backends.context_memory import ContextMemory
    from quantmatrix.config import ModelSpec, Study
    from quantmatrix.models.ladder import Variant

Script = Callable[[GenerationRequest], str] | Mapping[str, str]
LetterScript = Callable[[GenerationRequest], Sequence[float]]


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


def hashed_letter_probs(salt: str) -> LetterScript:
    """Option-letter probabilities that depend only on (salt, prompt), summing to 0.9, with the
    largest on the letter :func:`hashed_letter_script` replies with."""
    reply = hashed_letter_script(salt)

    def probs(request: GenerationRequest) -> list[float]:
        n = request.letter_count
        picked = ord(reply(request)) - ord("A")
        weights = [
            1.0 + int(hashlib.sha256(f"{salt}|{request.prompt}|{i}".encode()).hexdigest(), 16) % 5
            for i in range(n)
        ]
        weights[picked % n] += 6.0
        return [0.9 * w / sum(weights) for w in weights]

    return probs


class FakeBackend:
    name = "fake"

    def __init__(
        self,
        script: Script,
        prompt_tps: float = 400.0,
        decode_tps: float = 40.0,
        memory_bytes: int = 123_000_000,
        fail_on: Callable[[GenerationRequest], bool] | None = None,
        letters: LetterScript | None = None,
        batch_size: int = 1,
        batched: Script | None = None,
        batched_letters: LetterScript | None = None,
    ) -> None:
        self.script = script
        self.prompt_tps = prompt_tps
        self.decode_tps_sim = decode_tps
        self.memory_bytes = memory_bytes
        self.fail_on = fail_on
        self.letters = letters
        self.batch_size = batch_size
        self.batched, self.batched_letters = batched, batched_letters
        self.capabilities = Capabilities(
            logprobs=False, letter_probs=letters is not None, max_in_flight=1, native_timing=True
        )
        self.calls: list[GenerationRequest] = []

    def _together(self, request: GenerationRequest) -> bool:
        return self.batch_size > 1 and request.batch_group is not None

    def _text(self, request: GenerationRequest) -> str:
        script = self.batched if self._together(request) and self.batched else self.script
        if callable(script):
            return script(request)
        return script.get(request.key, "")

    def _letters(self, request: GenerationRequest) -> tuple[float, ...] | None:
        letters = self.letters
        if self._together(request) and self.batched_letters is not None:
            letters = self.batched_letters
        if letters is None or request.letter_count <= 0:
            return None
        return tuple(float(p) for p in letters(request))

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
            probs = self._letters(request)
            yield GenerationResult(request.key, text, "stop", timing, letter_probs=probs)

    def info(self) -> dict[str, Any]:
        extra = {"batch_size": self.batch_size} if self.batch_size > 1 else {}
        return {"engine": "fake", "version": "1", **extra}

    def memory(self) -> MemoryReading | None:
        return MemoryReading(self.memory_bytes, "fake")

    def close(self) -> None:
        pass


FAKE_MODEL_BYTES = 100 * 2**20
FAKE_KV_BYTES_PER_TOKEN = 24 * 2**10  # at f16; a KV type scales it by its bytes per value


def context_memory(variant: Variant, spec: ModelSpec, study: Study, n_ctx: int) -> ContextMemory:
    """The registry's memory probe for the fake backend: a scripted figure, linear in the
    context and scaled by the KV type, so the memory phase and the decision run without a
    model (a fixed model size by the level's nominal bits, plus the KV cache)."""
    from quantmatrix.backends.context_memory import ContextMemory
    from quantmatrix.kvcache import KV_TYPES, needs_flash_attn
    from quantmatrix.levels import check_level

    model = round(FAKE_MODEL_BYTES * check_level(variant.level).bits / 16)
    kv = round(FAKE_KV_BYTES_PER_TOKEN * KV_TYPES[variant.kv_cache].bytes_per_value / 2 * n_ctx)
    return ContextMemory(
        n_ctx=n_ctx, kv_cache=variant.kv_cache, flash_attn=needs_flash_attn(variant.kv_cache),
        fill="full", filled_tokens=n_ctx - 1, peak_bytes=model + kv, basis="fake",
        rss_before_bytes=0, rss_peak_bytes=model + kv, model_bytes=model, kv_bytes=kv,
        compute_bytes=0, output_bytes=0, vram_bytes=None, offloaded=False, fill_s=0.0,
    )  # fmt: skip


def create(variant: Variant, spec: ModelSpec, study: Study) -> FakeBackend:
    """The registry's factory: replies and letter probabilities hashed from the variant's id,
    so each variant answers differently and every run of it the same."""
    salt = variant.id
    return FakeBackend(hashed_letter_script(salt), letters=hashed_letter_probs(salt))


class Unsteady:
    """A backend factory for scripted nondeterminism (tests of the determinism check).

    The first backend opened for a variant answers as :func:`create`'s does; every backend
    opened for it later adds a word to the replies to requests ``text_on`` picks, and moves
    the letter probabilities of those ``letters_on`` picks by ``nudge`` (the text unchanged).
    """

    def __init__(
        self,
        text_on: Callable[[GenerationRequest], bool] | None = None,
        letters_on: Callable[[GenerationRequest], bool] | None = None,
        nudge: float = 1e-9,
    ) -> None:
        self.text_on = text_on
        self.letters_on = letters_on
        self.nudge = nudge
        self.opened: dict[str, int] = {}

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> FakeBackend:
        again = self.opened.get(variant.id, 0) > 0
        self.opened[variant.id] = self.opened.get(variant.id, 0) + 1
        reply, probs = hashed_letter_script(variant.id), hashed_letter_probs(variant.id)
        if not again:
            return FakeBackend(reply, letters=probs)
        text_on, letters_on, nudge = self.text_on, self.letters_on, self.nudge

        def unsteady_reply(request: GenerationRequest) -> str:
            text = reply(request)
            return f"{text} again" if text_on is not None and text_on(request) else text

        def unsteady_probs(request: GenerationRequest) -> list[float]:
            values = list(probs(request))
            if letters_on is not None and letters_on(request):
                values[0] += nudge
            return values

        return FakeBackend(unsteady_reply, letters=unsteady_probs)
