"""Is greedy decoding on this llama.cpp build deterministic? ``quantmatrix doctor --determinism``.

The engine probe's tiny model (``engine/probe.py``: random weights, no vocabulary, fed token
ids) at each probe level answers a few prompts greedily, in a fresh model and context each
time: at the machine's thread count, again at the same count, and at another (half, or 2 after
1). Each answer is the greedy tokens and the full next-token logits row before each of them; a
repeat is deterministic when every token and every logit is equal, bit for bit. The study's
own check (``pipeline/determinism.py``) does the same with real items and batch groups.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantmatrix.engine.load import EngineSettings

PROMPTS = 3
PROMPT_TOKENS = 48
DECODE_TOKENS = 16


@dataclass(frozen=True)
class Answer:
    tokens: tuple[int, ...]
    logits: np.ndarray  # (DECODE_TOKENS, vocabulary) float32: the row before each token


@dataclass(frozen=True)
class Repeat:
    """One repeat compared with the first pass."""

    level: str
    threads: int
    first_threads: int
    same_tokens: bool
    same_logits: bool
    max_abs_diff: float

    @property
    def same(self) -> bool:
        return self.same_tokens and self.same_logits


@dataclass(frozen=True)
class EngineDeterminism:
    repeats: tuple[Repeat, ...]

    @property
    def deterministic(self) -> bool:
        return all(r.same for r in self.repeats)

    def as_dict(self) -> dict[str, Any]:
        return {"deterministic": self.deterministic, "prompts": PROMPTS,
                "prompt_tokens": PROMPT_TOKENS, "decode_tokens": DECODE_TOKENS,
                "repeats": [asdict(r) for r in self.repeats]}  # fmt: skip


def prompt_ids(k: int, vocab: int) -> list[int]:
    return [(7919 * i + 104729 * k + 13) % vocab for i in range(PROMPT_TOKENS)]


def answer_all(path: Path, threads: int, engine: EngineSettings) -> list[Answer]:
    """Every prompt answered greedily in one fresh model and context at ``threads``."""
    from quantmatrix.engine.load import open_for_eval

    n_ctx = PROMPT_TOKENS + DECODE_TOKENS + 8
    llm = open_for_eval(path, n_ctx, threads, logits_all=True, engine=engine)
    try:
        vocab = int(llm.n_vocab())
        out = []
        for k in range(PROMPTS):
            llm.reset()
            llm.eval(prompt_ids(k, vocab))
            tokens, rows = [], []
            for _ in range(DECODE_TOKENS):
                row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
                token = int(np.argmax(row))
                tokens.append(token)
                rows.append(row)
                llm.eval([token])
            out.append(Answer(tuple(tokens), np.stack(rows)))
        return out
    finally:
        llm.close()


def compare(
    level: str, first: list[Answer], again: list[Answer], threads: tuple[int, int]
) -> Repeat:
    same_tokens = all(a.tokens == b.tokens for a, b in zip(first, again, strict=True))
    same_logits = all(
        a.logits.tobytes() == b.logits.tobytes() for a, b in zip(first, again, strict=True)
    )
    diff = max(_max_diff(a, b) for a, b in zip(first, again, strict=True))
    return Repeat(level, threads[1], threads[0], same_tokens, same_logits, diff)


def _max_diff(a: Answer, b: Answer) -> float:
    """The largest logit difference over the rows that follow the same tokens (up to and
    including the step where the tokens first differ)."""
    pairs = enumerate(zip(a.tokens, b.tokens, strict=True))
    steps = next((i for i, (x, y) in pairs if x != y), None)
    rows = len(a.tokens) if steps is None else steps + 1
    return float(np.max(np.abs(a.logits[:rows] - b.logits[:rows])))


def probe_engine_determinism(cache: Path, threads: int | None = None) -> EngineDeterminism:
    """Each probe level: a first pass, a fresh repeat at the same threads, one at another."""
    from quantmatrix.engine.probe import probe_models
    from quantmatrix.engine.settings import machine_settings

    n = threads or os.cpu_count() or 1
    other = max(1, n // 2) if n > 1 else 2
    engine = machine_settings(cache=cache)
    repeats = []
    for level, path in probe_models(cache, n).items():
        first = answer_all(path, n, engine)
        for t in (n, other):
            repeats.append(compare(level, first, answer_all(path, t, engine), (n, t)))
    return EngineDeterminism(tuple(repeats))


def render_lines(found: EngineDeterminism) -> list[str]:
    """The doctor's lines: the verdict, then each repeat that differed."""
    what = (
        f"{PROMPTS} prompts x {DECODE_TOKENS} greedy tokens on the tiny model at "
        f"{', '.join(sorted({r.level for r in found.repeats}))}, each in a fresh context"
    )
    if found.deterministic:
        counts = sorted({r.threads for r in found.repeats}, reverse=True)
        return [
            f"engine determinism: deterministic ({what}; same tokens and bitwise-equal logits "
            f"at {' and '.join(str(t) for t in counts)} threads)"
        ]
    lines = [f"engine determinism: NOT deterministic ({what})"]
    for r in found.repeats:
        if not r.same:
            how = "other tokens" if not r.same_tokens else f"logits differ by {r.max_abs_diff:.3g}"
            lines.append(f"  {r.level} at {r.threads} threads vs {r.first_threads}: {how}")
    return lines
