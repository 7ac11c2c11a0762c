"""Whether two answers to one request are the same, bit for bit (the determinism check's rule).

Two answers agree when their texts are equal byte for byte and, where both have them, their
option-letter probabilities are equal as IEEE doubles (``0.1 == 0.1`` bit for bit, ``-0.0`` and
``0.0`` told apart, a NaN never equal). The largest absolute difference between the two
probability vectors says by how much they differ when they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    same_output: bool
    same_letters: bool | None  # None: one side (or both) has no letter probabilities
    letters_max_abs_diff: float | None

    @property
    def same(self) -> bool:
        """Everything both answers have is equal."""
        return self.same_output and self.same_letters is not False


def same_bits(a: Sequence[float], b: Sequence[float]) -> bool:
    """Equal length and every value equal as a 64-bit float, bit for bit."""
    if len(a) != len(b):
        return False
    return np.asarray(a, dtype=np.float64).tobytes() == np.asarray(b, dtype=np.float64).tobytes()


def agreement(
    text: str,
    letters: Sequence[float] | None,
    again_text: str,
    again_letters: Sequence[float] | None,
) -> Agreement:
    """How a second answer (``again_*``) compares with the first."""
    same_output = text.encode("utf-8") == again_text.encode("utf-8")
    if letters is None or again_letters is None:
        return Agreement(same_output, None, None)
    if len(letters) != len(again_letters):
        return Agreement(same_output, False, None)
    diff = np.abs(np.asarray(letters, dtype=np.float64) - np.asarray(again_letters, np.float64))
    largest = float(diff.max()) if diff.size else 0.0
    return Agreement(same_output, same_bits(letters, again_letters), largest)
