"""The one backend interface: typed requests in, typed results with timings out.

A backend turns :class:`GenerationRequest` objects into :class:`GenerationResult` objects.
Optional abilities (logprobs, requests in flight) are data in :class:`Capabilities`, not extra
abstract methods. Backends are chosen by a string (see :mod:`quantmatrix.backends.registry`),
and each imports its heavy library only when it is created.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to answer.

    ``prompt`` is the user's text. Instruct models get it wrapped in their chat template
    (with ``system`` as the system message when given); base models get it raw.
    """

    key: str
    prompt: str
    max_tokens: int
    system: str | None = None
    stop: tuple[str, ...] = ()
    stop_at_line_end: bool = False  # stop when a line with content ends
    temperature: float = 0.0
    seed: int = 42
    letter_count: int = 0  # > 0: also return the next-token probability of letters A.. (n)
    # requests next to each other with the same group may be decoded together (one batch);
    # the caller numbers groups from positions in the full plan (see backends/batching.py)
    batch_group: int | None = None


@dataclass(frozen=True)
class Timing:
    """Per-sample counts and times: native ones from the engine itself, wall from the client."""

    prompt_tokens: int
    generated_tokens: int
    wall_s: float
    prompt_eval_s: float | None = None
    decode_s: float | None = None
    decode_tokens: int | None = None
    load_s: float | None = None
    ttft_s: float | None = None
    # the server's own handling time of the request, when it reports one (llama_cpp.server's
    # openai-processing-ms header): the reference for the client-side HTTP overhead
    server_s: float | None = None

    @property
    def native_s(self) -> float | None:
        if self.prompt_eval_s is None or self.decode_s is None:
            return None
        return self.prompt_eval_s + self.decode_s

    @property
    def decode_tps(self) -> float | None:
        """Engine-native decode speed: tokens decoded over the time the engine spent on them."""
        if self.decode_s is None or self.decode_s <= 0 or not self.decode_tokens:
            return None
        return self.decode_tokens / self.decode_s


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token and its log-probability, as the engine or server reported them."""

    token: str
    logprob: float


@dataclass(frozen=True)
class GenerationResult:
    key: str
    text: str
    finish_reason: str
    timing: Timing
    error: str | None = None
    # with ``letter_count``: per option letter, its probability as the first generated token
    # (absolute, not renormalised; summed over its surface forms such as "A" and " A")
    letter_probs: tuple[float, ...] | None = None
    # per generated token, its log-probability, when the backend asked for them and got them
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True)
class Capabilities:
    logprobs: bool = False
    letter_probs: bool = False  # honours GenerationRequest.letter_count
    max_in_flight: int = 1
    native_timing: bool = True


@dataclass(frozen=True)
class MemoryReading:
    """Memory measured while the variant ran (bytes). ``source`` says what measured it."""

    peak_bytes: int
    source: str
    extra: dict[str, Any] = field(default_factory=dict)


class BackendError(RuntimeError):
    """A backend failed in a way the user must fix (bad model file, unreachable server, ...)."""


@runtime_checkable
class Backend(Protocol):
    name: str
    capabilities: Capabilities

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        """Answer each request; yield results in the order of ``requests``."""
        ...

    def info(self) -> dict[str, Any]:
        """Engine name and version, model details: goes into the manifest."""
        ...

    def memory(self) -> MemoryReading | None:
        """Peak memory while this backend's model was loaded, if it can be measured."""
        ...

    def close(self) -> None: ...
