"""Shared test factories: typed analyses built by hand, shaped like ``analysis.build.analyze``'s.

Every part the decision and the report read is filled; what a test does not set is empty or
None, as a run without that measurement would have it.
"""

from __future__ import annotations

from typing import Any

from quantmatrix.analysis.divergence_model import Divergence
from quantmatrix.analysis.model import ANALYSIS_VERSION, Analysis, HarnessOverhead, Sizes
from quantmatrix.analysis.stats.model import (
    EquivalenceRow,
    Family,
    PerTask,
    Power,
    Statistics,
    StatsSummary,
)
from quantmatrix.analysis.variant_model import (
    FileInfo,
    MemoryInfo,
    SessionOverhead,
    TaskAccuracy,
    TimingBlock,
    VariantSummary,
)
from quantmatrix.config import Decoding
from quantmatrix.decide import tier

RATE = 0.036  # $/hour: 10 tok/s -> exactly $1 per 1M tokens


def timing(tps: float | None = 10.0, ttft: float | None = None) -> TimingBlock:
    """A timing block with a native decode speed and a mean TTFT; the rest left unmeasured."""
    return TimingBlock(
        native_decode_tps=tps,
        native_prompt_tps=None,
        wall_tps=None,
        ttft_mean_s=ttft,
        ttft_median_s=ttft,
        mean_generated_tokens=None,
        mean_prompt_tokens=None,
        wall_s=0.0,
        native_s=0.0,
    )


def task_block(n: int, acc: float | None, delta_pp: float | None = None) -> TaskAccuracy:
    k = None if acc is None else round(n * acc)
    return TaskAccuracy(
        n=n, correct=k or 0, accuracy=acc, ci_low=None, ci_high=None, raw_exact=None,
        unparsed=0, unparsed_rate=None, delta_pp=delta_pp,
    )  # fmt: skip


def variant(
    model: str,
    level: str,
    acc: float | None,
    *,
    baseline: bool = False,
    tps: float | None = 10.0,
    peak: int | None = None,
    n_params: int | None = 3_000_000_000,
    half: float = 0.05,
    tasks: dict[str, float] | None = None,
    gen: float | None = None,
) -> VariantSummary:
    """A variant summary without deltas or tier (:func:`analysis` adds them)."""
    return VariantSummary(
        variant=f"{model}@{level}", model=model, level=level, is_baseline=baseline,
        n=100, correct=0 if acc is None else round(100 * acc), accuracy=acc,
        ci_low=None if acc is None else acc - half, ci_high=None if acc is None else acc + half,
        raw_exact=acc, unparsed=0, unparsed_rate=0.0,
        tasks={t: task_block(50, a) for t, a in (tasks or {}).items()},
        generation=None, gen_delta_pct=gen,
        timing=timing(tps, 0.1 + (tps or 0) / 1000),
        overhead=SessionOverhead(eval_wall_s=0.0, native_s=0.0, harness_overhead=None),
        file=None if n_params is None else FileInfo(n_params=n_params, size_bytes=n_params),
        memory=None if peak is None else MemoryInfo(peak_bytes=peak, source="test RSS"),
        reconstructed=None, source_type=None, delta_pp=None, tier=None,
        kld_mean=None, kld_p99=None, top_agreement=None, ppl_ratio=None,
        letter_kl_mean=None, letter_agreement=None,
    )  # fmt: skip


def with_deltas(variants: list[VariantSummary]) -> list[VariantSummary]:
    """Deltas and tiers against each model's baseline, as ``tables.variant_summaries`` adds them
    (the tier through ``decide.tier``, the one rule)."""
    out = []
    for v in variants:
        base = next((b for b in variants if b.model == v.model and b.is_baseline), None)
        if base is None or v.accuracy is None or base.accuracy is None:
            out.append(v)
            continue
        delta = 100 * (v.accuracy - base.accuracy)
        tasks = {
            t: b.model_copy(
                update={"delta_pp": 100 * ((b.accuracy or 0) - (base.tasks[t].accuracy or 0))}
            )
            for t, b in v.tasks.items()
        }
        update = {"delta_pp": delta, "tier": tier(delta, v.gen_delta_pct), "tasks": tasks}
        out.append(v.model_copy(update=update))
    return out


def empty_statistics(equivalence: tuple[EquivalenceRow, ...] = ()) -> Statistics:
    family = Family(
        n_tests=0, bonferroni_alpha=None, tests=(), survivors_bonferroni=(), survivors_holm=()
    )
    return Statistics(
        alpha=0.05, seed=42, power_target=0.8, wilson=(), adjacent=(),
        corrections={"welch": family, "paired": family}, equivalence=equivalence, ladder=(),
        power=Power(models=(), variants=()), bootstrap=(), timing=(),
        per_task=PerTask(families="", tests=(), differential=()),
        summary=StatsSummary(variants_vs_baseline=0, accuracy_equivalent={}),
    )  # fmt: skip


def equivalence_row(variant: str, **fields: Any) -> EquivalenceRow:
    """One TOST row for ``variant`` (model@level); ``fields`` override the defaults."""
    model, level = variant.split("@")
    row: dict[str, Any] = {
        "model": model, "variant": variant, "level": level, "metric": "accuracy",
        "margin_label": "3pp", "design": "paired", "margin": 0.03, "n": 100, "delta": 0.0,
        "p_lower": 0.01, "p_upper": 0.01, "p_value": 0.01, "equivalent": True,
    }  # fmt: skip
    return EquivalenceRow.model_validate({**row, **fields})


def analysis(variants: list[VariantSummary], **top: Any) -> Analysis:
    """An analysis of ``variants`` (deltas and tiers added), priced at :data:`RATE`."""
    fields: dict[str, Any] = {
        "analysis_version": ANALYSIS_VERSION,
        "study": "synthetic",
        "config_hash": "0" * 64,
        "decoding": Decoding(),
        "cost_per_hour": RATE,
        "context_length": 2048,
        "sizes": Sizes(
            items_per_variant=100,
            per_task={},
            one_item_pp=1.0,
            wilson_half_width_at_50pct=None,
            unpaired_mde_at_50pct=None,
        ),
        "variants": tuple(with_deltas(variants)),
        "harness_overhead": HarnessOverhead(eval_wall_s=0.0, native_s=0.0, ratio=None),
        "statistics": empty_statistics(),
        "scoring_models": None,
        "divergence": Divergence(variants={}, order=(), n_boot=2000, seed=0),
        "divergence_cliffs": {},
        "log_warnings": (),
    }
    return Analysis(**{**fields, **top})


def ladder() -> Analysis:
    """'big' has F16..Q2_K (cliff at Q2_K); 'small' has no F16 (Q8_0 is its baseline)."""
    t = {"mmlu": 0.7, "arc_challenge": 0.7}
    return analysis(
        [
            variant("big", "F16", 0.70, baseline=True, tps=10, peak=6_500_000_000, tasks=t),
            variant("big", "Q8_0", 0.695, tps=18, peak=3_500_000_000, tasks=t),
            variant(
                "big",
                "Q4_K_M",
                0.68,
                tps=30,
                peak=2_000_000_000,
                tasks={"mmlu": 0.66, "arc_challenge": 0.70},
            ),
            variant("big", "Q2_K", 0.55, tps=40, peak=1_900_000_000, tasks=t),
            variant("small", "Q8_0", 0.50, baseline=True, tps=60, n_params=1_000_000_000),
            variant("small", "Q4_K_M", 0.49, tps=90, n_params=1_000_000_000),
        ]
    )


def memory_summary(vid: str, n_params: int | None, memory: dict[str, Any]) -> VariantSummary:
    """A variant summary of ``vid`` (model@level) carrying a backend's memory reading as logged
    (``peak_bytes``, ``source`` and the backend's extras)."""
    model, level = vid.split("@")
    bare = variant(model, level, 0.5, n_params=n_params)
    return bare.model_copy(update={"memory": MemoryInfo.model_validate(memory)})


def certified(
    summary: VariantSummary,
    low: float,
    high: float,
    *,
    change: float | None = None,
    n: int = 100,
    gen: tuple[float, float, float] | None = None,
    note: str = "",
) -> VariantSummary:
    """``summary`` with a certified block of a paired benchmark interval ``[low, high]`` pp
    (and, given ``gen = (change, low, high)``, a generation one in %); tiers from the bounds."""
    from quantmatrix.analysis.certified_model import CertifiedBlock, ChangeInterval, Tiers
    from quantmatrix.analysis.stats import certify
    from quantmatrix.decide import TIER_BOUNDS_BENCH, TIER_BOUNDS_GEN

    mid = (low + high) / 2 if change is None else change
    bench = certify.tier_range(certify.Interval(mid, low, high), TIER_BOUNDS_BENCH)
    ranges = [bench]
    generation = None
    if gen is not None:
        ranges.append(certify.tier_range(certify.Interval(*gen), TIER_BOUNDS_GEN))
        generation = ChangeInterval(
            unit="%",
            change=gen[0],
            low=gen[1],
            high=gen[2],
            alpha=0.05,
            method="delta",
            n=n,
            certified_low=gen[1],
        )
    both = certify.combine(*ranges)
    assert both is not None
    block = CertifiedBlock(
        baseline=f"{summary.model}@F16", design="fixed",
        bench=ChangeInterval(
            unit="pp", change=mid, low=low, high=high, alpha=0.0333, method="tango", n=n,
            certified_low=low,
        ),
        bench_tiers=Tiers(point=bench.point, certified=bench.certified, best=bench.best),
        generation=generation,
        generation_tiers=None if gen is None else Tiers(
            point=ranges[1].point, certified=ranges[1].certified, best=ranges[1].best
        ),
        point=both.point, certified=both.certified, best=both.best, decided=both.decided,
        note=note, flips=None, same_answer=None, unparsed=None, family_rule="fixed sequence",
        items_used=n, items_fixed=None,
    )  # fmt: skip
    return summary.model_copy(update={"certified": block})
