"""The benchmark and generation signals of the certified tiers: per-item outcomes from the run
log, paired intervals down a model's ladder, and their tiers (fixed sequence; under adaptive
sampling, the stopping rule's tiers on the outcomes in round order). Pure functions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from quantmatrix.analysis.stats import certify
from quantmatrix.analysis.stats.paired import (
    CERTIFY_METHOD,
    PairedChange,
    PairedCounts,
    interval_of_counts,
    ratio_change_interval,
)
from quantmatrix.analysis.stats.sequential import paired_change_sequence
from quantmatrix.config import Study
from quantmatrix.decide import TIER_BOUNDS_BENCH, TIER_BOUNDS_GEN, tier_within
from quantmatrix.runlog import RunLog
from quantmatrix.stopping.rounds import round_order, stratum
from quantmatrix.stopping.rule import adaptive_stops, tier_name
from quantmatrix.tasks import multiple_choice


@dataclass(frozen=True)
class Item:
    """One multiple-choice answer as the certified tiers read it."""

    correct: bool
    parsed: bool
    pred: str | None
    stratum: str


@dataclass(frozen=True)
class Signal:
    """One signal of one variant: its interval and its tiers (fixed sequence applied)."""

    interval: PairedChange
    tiers: certify.TierRange
    certified_low: float  # the worst lower end of this and every level above (fixed sequence)


def sequenced(pairs: Sequence[tuple[PairedChange, certify.TierRange]]) -> list[Signal]:
    """Signals down a ladder, each with its fixed-sequence lower bound."""
    lows = certify.fixed_sequence_lows([iv.low for iv, _ in pairs])
    return [Signal(iv, tr, low) for (iv, tr), low in zip(pairs, lows, strict=True)]


def mc_items(log: RunLog) -> dict[str, dict[str, Item]]:
    """variant -> item key -> its multiple-choice answer."""
    out: dict[str, dict[str, Item]] = defaultdict(dict)
    for r in log.samples:
        if r.task_kind != "multiple_choice":
            continue
        s = multiple_choice.score_row(r)
        subject = r.input.get("subject")
        out[r.variant][r.item_key] = Item(
            bool(s["correct"]), bool(s["parsed"]), s["pred"], stratum(r.task, subject)
        )
    return dict(out)


def _tango(base: Mapping[str, Item], var: Mapping[str, Item], alpha: float) -> PairedChange:
    keys = sorted(set(base) & set(var))
    counts = PairedCounts.of([base[k].correct for k in keys], [var[k].correct for k in keys])
    return interval_of_counts(counts, alpha, CERTIFY_METHOD)


def fixed_bench(
    base: Mapping[str, Item], below: Sequence[Mapping[str, Item]], alpha: float
) -> list[Signal]:
    """Paired score intervals down the ladder and their tiers under the fixed sequence."""
    intervals = [_tango(base, var, alpha) for var in below]
    ranges = certify.certify_ladder(
        [certify.Interval(iv.change, iv.low, iv.high) for iv in intervals], TIER_BOUNDS_BENCH
    )
    return sequenced(list(zip(intervals, ranges, strict=True)))


def prefix(items: Mapping[str, Item], order: Sequence[str]) -> list[bool]:
    """Correctness along the round order, up to the first item not run."""
    out = []
    for key in order:
        if key not in items:
            break
        out.append(items[key].correct)
    return out


def model_order(items: Mapping[str, Mapping[str, Item]], seed: int) -> list[str]:
    """The round order over every item key logged for one model's variants."""
    strata = {k: it.stratum for var in items.values() for k, it in var.items()}
    return round_order(strata, seed)


def adaptive_bench(
    base: Mapping[str, Item],
    below: Sequence[Mapping[str, Item]],
    study: Study,
    alpha: float,
    order: Sequence[str] | None = None,
) -> list[Signal]:
    """Betting sequences in round order, tiers from the stopping rule on the same outcomes.
    ``order``: the run's whole round order as the pipeline recorded it (manifest.json's
    ``round_order``); without it (a log from before it was recorded), the order over the
    items logged."""
    if order is None:
        order = model_order(
            {"base": base, **{str(i): v for i, v in enumerate(below)}}, study.selection_seed
        )
    base_seq = prefix(base, order)
    seqs = [prefix(v, order) for v in below]
    stops = adaptive_stops(base_seq, seqs, study.sampling, TIER_BOUNDS_BENCH, alpha, len(order))
    out = []
    for i, seq in enumerate(seqs):
        n = min(len(seq), len(base_seq))
        iv = paired_change_sequence(base_seq[:n], seq[:n], alpha, study.sampling.max_items)
        point = tier_within(iv.change, TIER_BOUNDS_BENCH)
        tr = certify.TierRange(point, tier_name(stops.certified[i]), tier_name(stops.best[i]))
        out.append((iv, tr))
    return sequenced(out)


def generation_signals(
    base: Mapping[str, float], below: Sequence[Mapping[str, float]], alpha: float
) -> list[Signal | None]:
    """Delta-method intervals of the key average's % change, fixed sequence over those
    variants that have one."""
    found: list[PairedChange | None] = []
    for var in below:
        keys = sorted(set(base) & set(var))
        found.append(ratio_change_interval([base[k] for k in keys], [var[k] for k in keys], alpha))
    known = [iv for iv in found if iv is not None]
    ranges = certify.certify_ladder(
        [certify.Interval(iv.change, iv.low, iv.high) for iv in known], TIER_BOUNDS_GEN
    )
    signals = iter(sequenced(list(zip(known, ranges, strict=True))))
    return [None if iv is None else next(signals) for iv in found]
