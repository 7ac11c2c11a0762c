"""The analysis of a run: a pure function of the run log, the input of the decision and report.

``analysis.json`` is this dict (with the decision added by the report); ``recommend``,
``validate`` and ``compare`` read it from here without going through the report.
"""

from __future__ import annotations

from typing import Any

from quantmatrix.analysis.divergence import cliff_agreement, letter_rows, summarize_divergence
from quantmatrix.analysis.outcomes import model_ladders
from quantmatrix.analysis.stats.power import mde_binary_unpaired
from quantmatrix.analysis.stats.section import build_statistics
from quantmatrix.analysis.tables import variant_summaries, wilson
from quantmatrix.runlog import RunLog, canonical_json

ANALYSIS_VERSION = 1


def build_analysis(log: RunLog) -> dict[str, Any]:
    """Summaries, statistics and divergence of every variant in ``log``; JSON-serializable."""
    study = log.study
    summaries = variant_summaries(log)
    statistics = build_statistics(model_ladders(log))
    letters = letter_rows(log.samples, study.baseline_variants())
    divergence = summarize_divergence(letters, log.kld)
    _attach_divergence(summaries, divergence)
    return {
        "analysis_version": ANALYSIS_VERSION,
        "study": study.name,
        "config_hash": log.manifest["config_hash"],
        "decoding": study.decoding.model_dump(),
        "cost_per_hour": study.cost_per_hour,
        "context_length": study.context_length,
        "sizes": _sizes(summaries),
        "variants": summaries,
        "harness_overhead": _overall_overhead(summaries),
        "statistics": statistics,
        "scoring_models": _scoring_models(log),
        "divergence": divergence,
        "divergence_cliffs": cliff_agreement(divergence, accuracy_deltas(summaries)),
        "log_warnings": log.warnings,  # rows the reading ignored (runlog.check.read_warnings)
    }


def accuracy_deltas(summaries: list[dict[str, Any]]) -> dict[str, float]:
    """variant -> accuracy change vs its baseline as a proportion (variants with a delta)."""
    return {s["variant"]: s["delta_pp"] / 100.0 for s in summaries if s["delta_pp"] is not None}


def _attach_divergence(summaries: list[dict[str, Any]], divergence: dict[str, Any]) -> None:
    for s in summaries:
        found = divergence["variants"].get(s["variant"]) or {}
        tokens, letters = found.get("tokens") or {}, found.get("letters") or {}
        s["kld_mean"] = tokens.get("kld_mean")
        s["kld_p99"] = tokens.get("kld_p99")
        s["top_agreement"] = tokens.get("same_top")
        s["ppl_ratio"] = tokens.get("ppl_ratio")
        s["letter_kl_mean"] = letters.get("letter_kl_mean")
        s["letter_agreement"] = letters.get("argmax_agreement")


def _scoring_models(log: RunLog) -> dict[str, Any] | None:
    models = [r.models.model_dump() for r in log.scores]
    found = {canonical_json(m): m for m in models}
    return found[min(found)] if found else None


def _sizes(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    n_items = max((s["n"] for s in summaries), default=0)
    per_task: dict[str, int] = {}
    for s in summaries:
        for t, block in s["tasks"].items():
            per_task[t] = max(per_task.get(t, 0), block["n"])
    half = None
    if n_items:
        low, high = wilson(n_items // 2, n_items)
        half = None if low is None or high is None else (high - low) / 2
    mde = mde_binary_unpaired(n_items) if n_items else None  # p=0.5, alpha 0.05, power 0.8
    return {
        "items_per_variant": n_items,
        "per_task": dict(sorted(per_task.items())),
        "one_item_pp": 100.0 / n_items if n_items else None,
        "wilson_half_width_at_50pct": half,
        "unpaired_mde_at_50pct": mde,
    }


def _overall_overhead(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    wall = sum(s["overhead"]["eval_wall_s"] for s in summaries)
    native = sum(s["overhead"]["native_s"] for s in summaries)
    return {"eval_wall_s": wall, "native_s": native, "ratio": wall / native if native else None}
