"""Is a server deterministic at temperature 0? ``quantmatrix doctor --server URL --model NAME``.

A few fixed prompts (two multiple-choice questions, with their option letters' probabilities
where the server gives them, and one open reply) are asked greedily (temperature 0, top-k 1,
repeat penalty 1, seed 42, as a study asks) through one new client, then through another: two
answers to a prompt agree when their texts are equal byte for byte and their letter
probabilities bit for bit (``agreement.py``). The prompts are the probe's own, not benchmark
items. Nothing is pulled: a model the server lacks is named, with the fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from quantmatrix.backends.agreement import agreement
from quantmatrix.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from quantmatrix.backends.http import ServerOptions

ServerKind = Literal["ollama", "openai"]
ROUNDS = 2  # fresh clients, each asking every prompt
_MC = (
    "Answer with the letter of the correct option only.\n\nWhich planet is closest to the "
    "Sun?\nA. Venus\nB. Mercury\nC. Earth\nD. Mars\nAnswer:",
    "Answer with the letter of the correct option only.\n\nWhat is 12 multiplied by 3?\n"
    "A. 15\nB. 36\nC. 9\nD. 42\nAnswer:",
)
_OPEN = "In three sentences, explain why the sky looks blue during the day."


def probe_requests() -> list[GenerationRequest]:
    mc = [
        GenerationRequest(f"mc-{i}", p, max_tokens=16, stop_at_line_end=True, letter_count=4)
        for i, p in enumerate(_MC)
    ]
    return [*mc, GenerationRequest(key="open", prompt=_OPEN, max_tokens=96)]


@dataclass(frozen=True)
class PromptRepeat:
    key: str
    same_output: bool
    same_letters: bool | None
    letters_max_abs_diff: float | None
    first: str
    again: str


@dataclass(frozen=True)
class ServerDeterminism:
    kind: str
    endpoint: str
    model: str
    prompts: tuple[PromptRepeat, ...]

    @property
    def deterministic(self) -> bool:
        return all(p.same_output and p.same_letters is not False for p in self.prompts)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "endpoint": self.endpoint, "model": self.model,
                "deterministic": self.deterministic,
                "prompts": [asdict(p) for p in self.prompts]}  # fmt: skip


def open_client(kind: ServerKind, endpoint: str, model: str) -> Backend:
    """A new client of ``model`` at ``endpoint``; an Ollama server must have it already."""
    if kind == "ollama":
        from quantmatrix.backends.ollama import OllamaBackend

        ollama = OllamaBackend(endpoint, model, ServerOptions(logprobs=True))
        if not ollama.has_model():
            ollama.close()
            raise BackendError(
                f"the Ollama server at {endpoint} has no model {model!r}; pull it first "
                f"(`ollama pull {model}`) or name one `ollama list` shows"
            )
        return ollama
    from quantmatrix.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(endpoint, model, ServerOptions(logprobs=False))


def _answers(kind: ServerKind, endpoint: str, model: str) -> list[GenerationResult]:
    client = open_client(kind, endpoint, model)
    try:
        results = list(client.generate(probe_requests()))
    finally:
        client.close()
    failed = next((r for r in results if r.error), None)
    if failed is not None:
        raise BackendError(f"{endpoint}: {model} answered {failed.key} with: {failed.error}")
    return results


def probe_server_determinism(kind: ServerKind, endpoint: str, model: str) -> ServerDeterminism:
    """Every probe prompt through ``ROUNDS`` fresh clients; the last compared with the first."""
    rounds = [_answers(kind, endpoint, model) for _ in range(ROUNDS)]
    first, again = rounds[0], rounds[-1]
    prompts = []
    for a, b in zip(first, again, strict=True):
        same = agreement(a.text, a.letter_probs, b.text, b.letter_probs)
        prompts.append(PromptRepeat(a.key, same.same_output, same.same_letters,
                                    same.letters_max_abs_diff, a.text, b.text))  # fmt: skip
    return ServerDeterminism(kind, endpoint, model, tuple(prompts))


def render_lines(found: ServerDeterminism) -> list[str]:
    """The doctor's lines: the verdict, then each prompt that differed."""
    where = f"{found.kind} server {found.endpoint}, model {found.model}"
    n = len(found.prompts)
    if found.deterministic:
        letters = any(p.same_letters for p in found.prompts)
        also = " and bitwise-equal letter probabilities" if letters else ""
        return [
            f"server determinism: deterministic at temperature 0 ({where}: {n} prompts asked "
            f"through {ROUNDS} fresh clients gave the same text{also})"
        ]
    lines = [f"server determinism: NOT deterministic at temperature 0 ({where})"]
    for p in found.prompts:
        if not p.same_output:
            lines.append(f"  {p.key}: text differs: {p.first[:60]!r} vs {p.again[:60]!r}")
        elif p.same_letters is False:
            by = "" if p.letters_max_abs_diff is None else f" by up to {p.letters_max_abs_diff:.3g}"
            lines.append(f"  {p.key}: same text, letter probabilities differ{by}")
    return lines
