"""One request decoded as a sequence of a batch: its tokens, its stops, its share of the time.

:meth:`SeqState.accept` takes one sampled token and decides whether the sequence goes on, in
the order and with the checks of llama-cpp-python 0.3.36's ``create_completion`` loop (an
end-of-generation token; the stop strings, on the bytes decoded so far, not while a UTF-8
character is incomplete; the token budget), with the embedded backend's own line stop
(``stop_at_line_end``: the first line with content has ended) where the single-stream path
checks it, between the stop strings and the budget. A sequence thus stops exactly where the
single-stream path stops for the same tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from quantmatrix.backends.base import GenerationRequest, Timing

Detokenize = Callable[[list[int]], bytes]
_UTF8_LEADS = ((2, 192), (3, 224), (4, 240))  # (character length, lead-byte pattern)


@dataclass
class SeqState:
    """A request's sequence: prompt tokens, what it generated, and its share of the times.

    Times are shares of the batch's engine time (see :mod:`quantmatrix.backends.llamacpp_batch`),
    ``ttft_s`` is the latency from the batch's start to this sequence's first token.
    """

    request: GenerationRequest
    prompt: list[int]
    stops: tuple[bytes, ...]
    budget: int
    tokens: list[int] = field(default_factory=list)  # generated, end-of-generation excluded
    sampled: int = 0
    text: bytes = b""
    finish: str | None = None
    first_logits: npt.NDArray[np.float32] | None = None
    prompt_s: float = 0.0
    decode_s: float = 0.0
    decode_tokens: int = 0
    ttft_s: float | None = None
    _multibyte: int = 0

    @property
    def active(self) -> bool:
        return self.finish is None

    @property
    def position(self) -> int:
        """The position of the last generated token (the next one to evaluate)."""
        return len(self.prompt) + len(self.tokens) - 1

    def accept(self, token: int, end_of_generation: bool, detokenize: Detokenize) -> None:
        """One sampled token: keep it and decide whether the sequence stops here."""
        self.sampled += 1
        if end_of_generation:
            self.text, self.finish = detokenize(self.tokens), "stop"
            return
        self.tokens.append(token)
        self.text = detokenize(self.tokens)
        if self._incomplete_character():
            return
        hits = [s for s in self.stops if s in self.text]
        if hits:
            self.text, self.finish = self.text[: self.text.index(hits[0])], "stop"
        elif self.request.stop_at_line_end and b"\n" in self.text.lstrip():
            self.finish = "stop"
        elif len(self.tokens) >= self.budget:
            self.finish = "length"

    def _incomplete_character(self) -> bool:
        """llama-cpp-python's multibyte check, as it is (it skips the stop and budget checks)."""
        for k, char in enumerate(self.text[-3:]):
            k = 3 - k
            for num, pattern in _UTF8_LEADS:
                if num > k and pattern & char == pattern:
                    self._multibyte = num - k
        if self._multibyte > 0:
            self._multibyte -= 1
            return True
        return False

    def output(self) -> str:
        text = self.text.decode("utf-8", errors="ignore")
        if self.request.stop_at_line_end:
            text = text.lstrip().split("\n", 1)[0]
        return text

    def timing(self, overhead_s: float) -> Timing:
        """Its timing; ``overhead_s``: its share of the batch's time outside llama.cpp."""
        return Timing(
            prompt_tokens=len(self.prompt),
            generated_tokens=min(self.sampled, self.request.max_tokens),
            wall_s=self.prompt_s + self.decode_s + overhead_s,
            prompt_eval_s=self.prompt_s,
            decode_s=self.decode_s,
            decode_tokens=self.decode_tokens,
            ttft_s=self.ttft_s,
        )


def common_prefix(prompts: Sequence[Sequence[int]]) -> list[int]:
    """The longest token prefix of all ``prompts``, one token short of the shortest prompt (every
    sequence evaluates at least its last prompt token itself, for its first logits)."""
    if not prompts:
        return []
    limit = min(len(p) for p in prompts) - 1
    first = prompts[0]
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return list(first[:n])
