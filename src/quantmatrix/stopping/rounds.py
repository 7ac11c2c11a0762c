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

import numpy as np

from quantmatrix.config import Sampling

__all__ = ["Sampling", "in_rounds", "round_order", "stratum"]


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
