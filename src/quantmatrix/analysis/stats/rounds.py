"""The order items run in under adaptive sampling: one seeded order, stratified, in rounds.

The order depends on the item keys, their strata (task and subject) and the seed only, never
on the level, so every level of a model runs the same items and any two levels can be paired
on a prefix. Every prefix of the order is close to proportionally stratified: stratum ``s``
with ``n_s`` of the ``N`` items has within one item of ``t n_s / N`` items among the first
``t`` (systematic interleaving of per-stratum shuffles).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """``sampling:`` of a study: fixed (every item) or adaptive rounds."""

    mode: str = "fixed"  # "fixed" or "adaptive"
    min_items: int = 100
    max_items: int = 1000
    round: int = 50

    def __post_init__(self) -> None:
        if self.mode not in ("fixed", "adaptive"):
            raise ValueError(f"sampling.mode must be fixed or adaptive, got {self.mode!r}")
        if not 1 <= self.min_items <= self.max_items:
            raise ValueError(
                "sampling needs 1 <= min_items <= max_items, "
                f"got {self.min_items}, {self.max_items}"
            )
        if self.round < 1:
            raise ValueError(f"sampling.round must be >= 1, got {self.round}")

    def looks(self, available: int) -> list[int]:
        """Item counts after which the intervals are updated: ``min_items``, then every
        ``round`` items, ending at ``max_items`` (or the items there are, if fewer)."""
        last = min(self.max_items, available)
        if last < 1:
            return []
        out = list(range(min(self.min_items, last), last, self.round))
        return [*out, last]


def stratum(task: str, subject: str | None) -> str:
    """The stratum of an item: its task and subject."""
    return f"{task}|{subject or ''}"


def round_order(strata: Mapping[str, str], seed: int) -> list[str]:
    """Item keys in the seeded, stratified run order (``strata``: item key -> stratum)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in sorted(strata):
        groups[strata[key]].append(key)
    rng = np.random.default_rng(seed)
    placed: list[tuple[float, int, str]] = []
    for rank, name in enumerate(sorted(groups)):
        keys = groups[name]
        shuffled = [keys[int(i)] for i in rng.permutation(len(keys))]
        offset = float(rng.random())
        placed.extend(((j + offset) / len(keys), rank, key) for j, key in enumerate(shuffled))
    return [key for _, _, key in sorted(placed)]


def in_rounds(order: Sequence[str], sampling: Sampling) -> list[list[str]]:
    """The order cut at the looks: the items of each round, in order."""
    cuts = [0, *sampling.looks(len(order))]
    return [list(order[a:b]) for a, b in itertools.pairwise(cuts)]
