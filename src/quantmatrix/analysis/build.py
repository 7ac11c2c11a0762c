"""The analysis of a run: :func:`analyze`, a pure function of the run log, the input of the
decision and the report.

``analysis.json`` is its JSON dump (with the decision added by the report); ``recommend``,
``validate`` and ``compare`` build it from a run folder, or read it back
(:func:`quantmatrix.analysis.model.read_analysis`).
"""

from __future__ import annotations

from collections.abc import Sequence

from quantmatrix.analysis.certified import certified_blocks
from quantmatrix.analysis.cross_model import cross_model_pairs
from quantmatrix.analysis.determinism import summarize_determinism
from quantmatrix.analysis.divergence import cliff_agreement, letter_rows, summarize_divergence
from quantmatrix.analysis.model import (
    ANALYSIS_VERSION,
    Analysis,
    HarnessOverhead,
    ScoringModels,
    Sizes,
    accuracy_deltas,
)
from quantmatrix.analysis.outcomes import model_ladders
from quantmatrix.analysis.probes import probes
from quantmatrix.analysis.stats.power import mde_binary_unpaired
from quantmatrix.analysis.stats.section import build_statistics
from quantmatrix.analysis.tables import variant_summaries, wilson
from quantmatrix.analysis.variant_model import VariantSummary
from quantmatrix.runlog import RunLog, canonical_json


def analyze(run: RunLog) -> Analysis:
    """Summaries, statistics and divergence of every variant in the run log ``run``."""
    study = run.study
    letters = letter_rows(run.samples, study.baseline_variants())
    divergence = summarize_divergence(letters, run.kld)
    summaries = variant_summaries(run, divergence, certified_blocks(run))
    found = probes(run)
    return Analysis(
        analysis_version=ANALYSIS_VERSION,
        study=study.name,
        config_hash=run.manifest["config_hash"],
        decoding=study.decoding,
        cost_per_hour=study.cost_per_hour,
        context_length=study.context_length,
        sizes=_sizes(summaries),
        variants=summaries,
        harness_overhead=_overall_overhead(summaries),
        statistics=build_statistics(model_ladders(run)),
        scoring_models=_scoring_models(run),
        divergence=divergence,
        divergence_cliffs=cliff_agreement(divergence, accuracy_deltas(summaries)),
        log_warnings=tuple(run.warnings),
        cross_model=cross_model_pairs(run),
        determinism=summarize_determinism(run),
        **({} if found is None else {"probes": found}),
    )


def _scoring_models(log: RunLog) -> ScoringModels | None:
    models = [r.models.model_dump() for r in log.scores]
    found = {canonical_json(m): m for m in models}
    return ScoringModels.model_validate(found[min(found)]) if found else None


def _sizes(summaries: Sequence[VariantSummary]) -> Sizes:
    n_items = max((s.n for s in summaries), default=0)
    per_task: dict[str, int] = {}
    for s in summaries:
        for t, block in s.tasks.items():
            per_task[t] = max(per_task.get(t, 0), block.n)
    half = None
    if n_items:
        low, high = wilson(n_items // 2, n_items)
        half = None if low is None or high is None else (high - low) / 2
    mde = mde_binary_unpaired(n_items) if n_items else None  # p=0.5, alpha 0.05, power 0.8
    return Sizes(
        items_per_variant=n_items,
        per_task=dict(sorted(per_task.items())),
        one_item_pp=100.0 / n_items if n_items else None,
        wilson_half_width_at_50pct=half,
        unpaired_mde_at_50pct=mde,
    )


def _overall_overhead(summaries: Sequence[VariantSummary]) -> HarnessOverhead:
    wall = sum(s.overhead.eval_wall_s for s in summaries)
    native = sum(s.overhead.native_s for s in summaries)
    return HarnessOverhead(
        eval_wall_s=wall, native_s=native, ratio=wall / native if native else None
    )
