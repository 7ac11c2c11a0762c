"""Cross-model comparisons: every variant against every variant of another model, paired on
the multiple-choice items both answered (pure functions of the run log).

Every model of a study is asked the same items, so two variants of different models form a
paired 2x2 table of correctness exactly as a variant and its baseline do, and the same paired
intervals apply (``stats/paired.py``). Fixed design: Tango's score interval
(``paired.CERTIFY_METHOD``) on the shared items. Adaptive design: the items each variant ran
are a prefix of the run's one round order, so the shared items are the shorter prefix, and
the interval is the betting confidence sequence on it (``stats/sequential.py``): valid however
the stopping rule chose where each variant stopped. Each interval is at two-sided
:data:`CROSS_ALPHA` on its own; the decision says so where it shows one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np

from quantmatrix.analysis.certified_signals import Item, mc_items, model_order, prefix
from quantmatrix.analysis.cross_model_model import CrossModelPair
from quantmatrix.analysis.stats.paired import (
    CERTIFY_METHOD,
    PairedChange,
    PairedCounts,
    tango_bounds,
)
from quantmatrix.analysis.stats.sequential import paired_change_sequence
from quantmatrix.runlog import RunLog

CROSS_ALPHA = 0.05  # two-sided, per comparison


def pair_intervals(
    shared: Sequence[tuple[Sequence[bool], Sequence[bool]]],
    alpha: float,
    adaptive: bool,
    horizon: int,
) -> list[PairedChange]:
    """accuracy(a) - accuracy(b) in pp with its paired interval, per ``(a, b)``: the two
    variants' correctness on their shared items (in round order when ``adaptive``); Tango's
    bounds of every table at once."""
    if adaptive:
        return [paired_change_sequence(b, a, alpha, horizon) for a, b in shared]
    counts = [PairedCounts.of(b, a) for a, b in shared]
    gained = np.array([c.gained for c in counts], dtype=float)
    lost = np.array([c.lost for c in counts], dtype=float)
    n = np.array([c.n for c in counts], dtype=float)
    low, high = tango_bounds(gained, lost, n, alpha)
    out = []
    for c, lo, hi in zip(counts, low, high, strict=True):
        change = 100.0 * (c.gained - c.lost) / c.n
        lo_pp, hi_pp = min(100.0 * float(lo), change), max(100.0 * float(hi), change)
        out.append(PairedChange(c.n, change, lo_pp, hi_pp, alpha, CERTIFY_METHOD))
    return out


def _shared(
    a: Mapping[str, Item], b: Mapping[str, Item], order: Sequence[str] | None
) -> tuple[list[bool], list[bool]]:
    if order is None:
        keys = sorted(set(a) & set(b))
        return [a[k].correct for k in keys], [b[k].correct for k in keys]
    sa, sb = prefix(a, order), prefix(b, order)
    n = min(len(sa), len(sb))
    return sa[:n], sb[:n]


def _pair(a_id: str, b_id: str, a: list[bool], b: list[bool], iv: PairedChange) -> CrossModelPair:
    return CrossModelPair(
        a=a_id,
        b=b_id,
        n=iv.n,
        a_only=sum(x and not y for x, y in zip(a, b, strict=True)),
        b_only=sum(y and not x for x, y in zip(a, b, strict=True)),
        change=iv.change,
        low=iv.low,
        high=iv.high,
        alpha=iv.alpha,
        method=iv.method,
    )


def _order(log: RunLog, items: Mapping[str, Mapping[str, Item]]) -> list[str] | None:
    """The round order the adaptive run recorded (or, for a log from before it was recorded,
    the order over the items logged); None for a fixed design."""
    study = log.study
    if study.sampling.mode != "adaptive":
        return None
    recorded = log.manifest.get("round_order")
    if isinstance(recorded, list):
        return [str(k) for k in recorded]
    return model_order(items, study.selection_seed)


def cross_model_pairs(log: RunLog, alpha: float = CROSS_ALPHA) -> tuple[CrossModelPair, ...]:
    """Every pair of variants of two different models with shared multiple-choice items;
    models in study order, levels in each model's order (empty for a one-model study)."""
    study = log.study
    items = mc_items(log)
    order = _order(log, items)
    ids = [
        [m.variant_id(lb) for lb in m.ordered_labels if items.get(m.variant_id(lb))]
        for m in study.models
    ]
    found = []
    for first, second in combinations(ids, 2):
        for a_id in first:
            for b_id in second:
                a, b = _shared(items[a_id], items[b_id], order)
                if a:
                    found.append((a_id, b_id, a, b))
    if not found:
        return ()
    shared = [(a, b) for _, _, a, b in found]
    ivs = pair_intervals(shared, alpha, order is not None, study.sampling.max_items)
    return tuple(
        _pair(a_id, b_id, a, b, iv) for (a_id, b_id, a, b), iv in zip(found, ivs, strict=True)
    )
