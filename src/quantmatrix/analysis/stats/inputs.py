"""Input records for the statistics module: per-variant outcomes and per-model ladders.

Items are paired by key: every paired analysis aligns two variants on the item keys
both of them share (sorted, so results do not depend on mapping order).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class VariantOutcomes:
    """Rescored outcomes of one quantized variant on the benchmark items."""

    variant: str  # e.g. "qwen2.5-coder-0.5b-instruct@Q4_K_M"
    model: str
    level: str  # "F16", "Q8_0", ...
    correct: Mapping[str, bool]  # item key -> rescored correctness (unparsed counts as False)
    metrics: Mapping[str, Mapping[str, float]]  # metric name -> item key -> value (may be empty)
    ttft_s: Sequence[float]  # per-sample time to first token
    decode_tps: Sequence[float]  # per-sample native decode tokens/s

    @property
    def n_items(self) -> int:
        """Number of items with a correctness outcome."""
        return len(self.correct)

    @property
    def n_correct(self) -> int:
        """Number of items scored correct."""
        return sum(1 for value in self.correct.values() if value)

    def shared_keys(self, other: VariantOutcomes) -> list[str]:
        """Sorted item keys whose correctness is known for both variants."""
        return sorted(set(self.correct) & set(other.correct))

    def correct_vector(self, keys: Sequence[str]) -> list[float]:
        """Correctness as 0.0/1.0 in the order of ``keys``."""
        return [1.0 if self.correct[key] else 0.0 for key in keys]

    def metric_keys(self, other: VariantOutcomes, metric: str) -> list[str]:
        """Sorted item keys where both variants have a value for ``metric``."""
        mine = self.metrics.get(metric, {})
        theirs = other.metrics.get(metric, {})
        return sorted(set(mine) & set(theirs))

    def metric_vector(self, metric: str, keys: Sequence[str]) -> list[float]:
        """Values of ``metric`` in the order of ``keys``."""
        values = self.metrics[metric]
        return [float(values[key]) for key in keys]


@dataclass(frozen=True)
class ModelLadder:
    """All variants of one model, ordered from highest precision (baseline first) to lowest."""

    model: str
    baseline: str  # level name of the baseline
    variants: Sequence[VariantOutcomes]

    @property
    def baseline_variant(self) -> VariantOutcomes:
        """The variant whose level is the baseline (the first variant if none matches)."""
        for variant in self.variants:
            if variant.level == self.baseline:
                return variant
        return self.variants[0]

    def below_baseline(self) -> list[VariantOutcomes]:
        """The variants after the baseline, in ladder order (highest precision first)."""
        base = self.baseline_variant
        return [variant for variant in self.variants if variant is not base]

    def adjacent_pairs(self) -> list[tuple[VariantOutcomes, VariantOutcomes]]:
        """Each (higher, lower) pair of neighbouring variants down the ladder."""
        steps = list(self.variants)
        return list(itertools.pairwise(steps))

    def metric_names(self) -> list[str]:
        """Sorted generation metric names present in any variant of the ladder."""
        names: set[str] = set()
        for variant in self.variants:
            names.update(variant.metrics)
        return sorted(names)
