"""Scripted next-token rows for the long-context probe, as ``fake.py`` scripts replies.

A :class:`FakeWindows` is a :class:`quantmatrix.scoring.windows.WindowModel` over a small
vocabulary: words hash to token ids; the baseline's logits at position ``p`` are seeded by
(``p``, the token there), and a variant's are the baseline's plus ``profile(p)`` times noise
seeded the same way with the variant's salt. ``profile`` is the script: 0 everywhere gives the
baseline itself (KL exactly 0); a constant gives a flat KL profile; a rising one, a KL that
grows with the context, so the probe's statistics can be tested against a known truth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from quantmatrix.levels import RANK
from quantmatrix.scoring.windows import Rows

if TYPE_CHECKING:
    from quantmatrix.config import ModelSpec, Study
    from quantmatrix.models.ladder import Variant

Profile = Callable[[int], float]
VOCAB = 64


def _word_id(word: str) -> int:
    return int(hashlib.sha256(word.encode()).hexdigest(), 16) % (VOCAB - 1) + 1


class FakeWindows:
    """Scripted rows: ``profile(position)`` scales the variant's departure from the baseline."""

    def __init__(self, profile: Profile, salt: str, limit: int = 32768) -> None:
        self.profile, self.salt, self.limit = profile, salt, limit
        self.evaluated = 0  # positions evaluated, for tests that count work

    def text_tokens(self, text: str) -> list[int]:
        return [_word_id(w) for w in text.split()]

    def bos(self) -> list[int]:
        return [0]

    def context_limit(self) -> int:
        return self.limit

    def _row(self, position: int, token: int) -> Rows:
        base = np.random.default_rng([position, token]).normal(size=VOCAB) * 2.0
        scale = self.profile(position)
        if scale:
            salt = int(hashlib.sha256(self.salt.encode()).hexdigest()[:8], 16)
            base = base + scale * np.random.default_rng([position, token, salt]).normal(size=VOCAB)
        return base.astype(np.float32)

    def windows(self, tokens: Sequence[int], window: int) -> Iterator[Rows]:
        for start in range(0, len(tokens), window):
            part = tokens[start : start + window]
            self.evaluated += len(part)
            yield np.stack([self._row(start + i, t) for i, t in enumerate(part)])


def flat_profile(scale: float) -> Profile:
    return lambda position: scale


def level_profile(variant: Variant, spec: ModelSpec) -> Profile:
    """The registry's default: no departure at the baseline, a flat one growing with the
    distance below it in the ladder."""
    steps = max(0, RANK[variant.level] - RANK[spec.baseline_level])
    return flat_profile(0.05 * steps)


def create(variant: Variant, spec: ModelSpec, study: Study) -> FakeWindows:
    return FakeWindows(level_profile(variant, spec), variant.id)
