"""Guards shared by the statistical tests here: quiet library calls, float arrays, finite values.

Where a library returns NaN for a degenerate sample (n < 2, zero variance), the callers map
it to a defined value so results stay JSON-safe; these helpers keep that mapping in one place.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np


@contextmanager
def quiet() -> Iterator[None]:
    """Silence RuntimeWarnings (e.g. scipy's precision loss on near-constant data) inside a
    library call; callers map any resulting NaN to a defined value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(all="ignore"):
            yield


def as_floats(values: Sequence[float]) -> np.ndarray:
    """The values as a float numpy array."""
    return np.asarray(values, dtype=float)


def finite(value: float) -> float | None:
    """The value as a float, or None when it is NaN or infinite."""
    return float(value) if math.isfinite(value) else None
