"""Multiplicity control: family-wise corrections and fixed-sequence (gatekeeping) testing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.multitest import multipletests


@dataclass(frozen=True)
class CorrectionResult:
    """Family-wise correction of one family of p-values."""

    alpha: float
    n_tests: int
    bonferroni_alpha: float | None
    p_bonferroni: tuple[float, ...]
    p_holm: tuple[float, ...]
    survives_bonferroni: tuple[bool, ...]
    survives_holm: tuple[bool, ...]


@dataclass(frozen=True)
class FixedSequenceResult:
    """Fixed-sequence (gatekeeping) walk down an ordered ladder."""

    tested: tuple[str, ...]
    confirmed: tuple[str, ...]
    stopped_at: str | None
    lowest_confirmed: str | None


def bonferroni_alpha(alpha: float, n_tests: int) -> float:
    """Per-test alpha under Bonferroni: ``alpha / n_tests``."""
    return alpha / n_tests


def correct_pvalues(p_values: Sequence[float], alpha: float = 0.05) -> CorrectionResult:
    """Bonferroni and Holm via ``statsmodels.stats.multitest.multipletests``."""
    if not p_values:
        return CorrectionResult(alpha, 0, None, (), (), (), ())
    raw = np.clip(np.asarray(p_values, dtype=float), 0.0, 1.0)
    rej_b, adj_b, _, _ = multipletests(raw, alpha=alpha, method="bonferroni")
    rej_h, adj_h, _, _ = multipletests(raw, alpha=alpha, method="holm")
    return CorrectionResult(
        alpha=alpha,
        n_tests=len(p_values),
        bonferroni_alpha=bonferroni_alpha(alpha, len(p_values)),
        p_bonferroni=tuple(float(p) for p in adj_b),
        p_holm=tuple(float(p) for p in adj_h),
        survives_bonferroni=tuple(bool(r) for r in rej_b),
        survives_holm=tuple(bool(r) for r in rej_h),
    )


def fixed_sequence(levels: Sequence[str], equivalent: Sequence[bool]) -> FixedSequenceResult:
    """Fixed-sequence gatekeeping: walk down ``levels`` (each tested at full alpha), stop at the
    first failure; the result is the lowest level still confirmed (None if the first fails).
    """
    tested: list[str] = []
    confirmed: list[str] = []
    stopped_at: str | None = None
    for level, ok in zip(levels, equivalent, strict=True):
        tested.append(level)
        if not ok:
            stopped_at = level
            break
        confirmed.append(level)
    lowest = confirmed[-1] if confirmed else None
    return FixedSequenceResult(tuple(tested), tuple(confirmed), stopped_at, lowest)
