"""Certified tiers from the run log: every variant's paired change vs its baseline, its three
tiers per signal, the worse of the two, and the agreement evidence (pure functions).

Fixed design: the benchmark change's interval is Tango's score interval
(``paired.CERTIFY_METHOD``) on the items both variants answered, the generation key average's
a delta-method interval of its % change; each at :func:`interval_alpha` with the fixed
sequence down the ladder (``certify.certify_ladder``). Adaptive design
(``sampling.mode: adaptive``): the benchmark interval is the betting confidence sequence on the
items in round order (``stopping.rounds.round_order`` over the model's logged items, strata
task|subject, seed ``selection_seed``), and the tiers are those of
``stopping.rule.adaptive_stops`` on the same outcomes, so the analysis says what the stopping
rule saw. A significant rise in unparsed replies holds a variant out of negligible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from quantmatrix.analysis.certified_model import (
    CertifiedBlock,
    ChangeInterval,
    FlipsBlock,
    RateBound,
    Tiers,
    UnparsedBlock,
)
from quantmatrix.analysis.certified_signals import (
    Item,
    Signal,
    adaptive_bench,
    fixed_bench,
    generation_signals,
    mc_items,
)
from quantmatrix.analysis.generation import item_metrics
from quantmatrix.analysis.stats import agreement, certify
from quantmatrix.analysis.stats.paired import (
    CERTIFY_METHOD,
)
from quantmatrix.config import ModelSpec, Study
from quantmatrix.runlog import RunLog
from quantmatrix.stopping.rule import FAMILY_ALPHA, study_alpha

UNPARSED_ALPHA = 0.05  # a rise only ever worsens a tier, so no multiplicity adjustment


def signal_alpha(study: Study) -> float:
    """Each interval's two-sided alpha (``stopping.rule.study_alpha``, the stopping rule's)."""
    return study_alpha(study)


def family_rule(design: str, alpha: float, kv_axis: bool = False) -> str:
    """The family-wise rule in words (``kv_axis``: the ladder holds (level, KV type) pairs,
    ordered by level, then KV type: one fixed sequence over all of them)."""
    how = (
        "betting confidence sequences (anytime-valid, any stopping round)"
        if design == "adaptive"
        else f"{CERTIFY_METHOD} score intervals (benchmark) and delta-method intervals (generation)"
    )
    above = "every level above it"
    if kv_axis:
        above = "every variant above it (by level, then KV-cache type)"
    return (
        f"fixed sequence down the ladder: a variant's certified bound is the worst lower end "
        f"of it and {above}; {how} at two-sided alpha {alpha:.4g} each, so the "
        f"chance that any tier of the model's ladder is certified better than its true tier "
        f"is at most {FAMILY_ALPHA:g} (union bound over the tier bounds and signals)"
    )


def _rate(r: agreement.Rate) -> RateBound:
    return RateBound(count=r.count, n=r.n, rate=r.rate, low=r.low, high=r.high)


def _interval(signal: Signal, unit: str) -> ChangeInterval:
    iv = signal.interval
    return ChangeInterval.model_validate(
        {"unit": unit, "change": iv.change, "low": iv.low, "high": iv.high, "alpha": iv.alpha,
         "method": iv.method, "n": iv.n, "certified_low": signal.certified_low}
    )  # fmt: skip


def _tiers(r: certify.TierRange) -> Tiers:
    return Tiers(point=r.point, certified=r.certified, best=r.best)


@dataclass(frozen=True)
class Evidence:
    """Agreement with the baseline on the paired items."""

    flips: FlipsBlock | None
    same: RateBound | None
    unparsed: UnparsedBlock | None


def evidence(base: Mapping[str, Item], var: Mapping[str, Item]) -> Evidence:
    keys = sorted(set(base) & set(var))
    if not keys:
        return Evidence(None, None, None)
    b, v = [base[k] for k in keys], [var[k] for k in keys]
    f = agreement.flips([x.correct for x in b], [x.correct for x in v])
    same = agreement.same_answer_rate([x.pred for x in b], [x.pred for x in v])
    up = agreement.unparsed_rise(
        [not x.parsed for x in b], [not x.parsed for x in v], UNPARSED_ALPHA
    )
    return Evidence(
        FlipsBlock(
            lost=_rate(f.correct_to_wrong),
            gained=_rate(f.wrong_to_correct),
            any=_rate(f.any_flip),
            change_bound_pp=f.change_bound_pp,
        ),
        _rate(same),
        UnparsedBlock(
            base=_rate(up.base),
            variant=_rate(up.var),
            p_value=up.p_value,
            significant=up.significant,
        ),
    )


def combined(
    bench: Signal | None, gen: Signal | None, unparsed: UnparsedBlock | None
) -> certify.TierRange | None:
    """The worse of the two signals, held out of negligible by a significant unparsed rise."""
    both = certify.combine(*(s.tiers for s in (bench, gen) if s is not None))
    if both is None or unparsed is None or not unparsed.significant:
        return both
    b, v = unparsed.base, unparsed.variant
    reason = (
        f"held out of negligible: unparsed replies rose from {b.count}/{b.n} to "
        f"{v.count}/{v.n} (McNemar p = {unparsed.p_value:.3g})"
    )
    return certify.hold_out_of_negligible(both, reason)


def _block(
    spec: ModelSpec,
    design: str,
    alpha: float,
    signals: tuple[Signal | None, Signal | None],
    ev: Evidence,
    items_fixed: int | None,
) -> CertifiedBlock | None:
    bench, gen = signals
    tiers = combined(bench, gen, ev.unparsed)
    if tiers is None:
        return None
    return CertifiedBlock.model_validate(
        {
            "baseline": spec.baseline_id,
            "design": design,
            "bench": None if bench is None else _interval(bench, "pp"),
            "bench_tiers": None if bench is None else _tiers(bench.tiers),
            "generation": None if gen is None else _interval(gen, "%"),
            "generation_tiers": None if gen is None else _tiers(gen.tiers),
            "point": tiers.point,
            "certified": tiers.certified,
            "best": tiers.best,
            "decided": tiers.decided,
            "note": tiers.note,
            "flips": ev.flips,
            "same_answer": ev.same,
            "unparsed": ev.unparsed,
            "family_rule": family_rule(design, alpha, spec.kv_cache is not None),
            "items_used": 0 if bench is None else bench.interval.n,
            "items_fixed": items_fixed,
        }
    )


def _model_blocks(
    log: RunLog, spec: ModelSpec, mc: Mapping[str, Mapping[str, Item]], alpha: float
) -> dict[str, CertifiedBlock]:
    study = log.study
    base_id = spec.baseline_id  # the ladder: by level, then KV type (ModelSpec.ordered_labels)
    ids = [spec.variant_id(lv) for lv in spec.ordered_labels if lv != spec.baseline_label]
    gen = {vid: item_metrics(log, vid).get("key_avg", {}) for vid in [base_id, *ids]}
    ids = [v for v in ids if mc.get(v) or gen[v]]
    if not ids or not (mc.get(base_id) or gen[base_id]):
        return {}
    base = mc.get(base_id, {})
    below = [mc.get(v, {}) for v in ids]
    adaptive = study.sampling.mode == "adaptive"
    recorded = log.manifest.get("round_order")  # pipeline/adaptive.py wrote the whole order
    order = [str(k) for k in recorded] if adaptive and isinstance(recorded, list) else None
    benches: list[Signal | None] = [None] * len(ids)
    ran = [i for i, var in enumerate(below) if var]  # variants with multiple-choice items
    if base and ran:
        ladder = [below[i] for i in ran]
        found = (
            adaptive_bench(base, ladder, study, alpha, order)
            if adaptive
            else fixed_bench(base, ladder, alpha)
        )
        for i, signal in zip(ran, found, strict=True):
            benches[i] = signal
    gens = generation_signals(gen[base_id], [gen[v] for v in ids], alpha)
    total = len({k for var in [base, *below] for k in var}) if order is None else len(order)
    fixed_n = min(study.sampling.max_items, total) if adaptive else None
    out = {}
    for i, vid in enumerate(ids):
        ev = evidence(base, below[i])
        block = _block(spec, study.sampling.mode, alpha, (benches[i], gens[i]), ev, fixed_n)
        if block is not None:
            out[vid] = block
    return out


def certified_blocks(log: RunLog) -> dict[str, CertifiedBlock]:
    """variant id -> its certified block, for every variant below a logged baseline."""
    study = log.study
    alpha = signal_alpha(study)
    mc = mc_items(log)
    out: dict[str, CertifiedBlock] = {}
    for spec in study.models:
        out.update(_model_blocks(log, spec, mc, alpha))
    return out
