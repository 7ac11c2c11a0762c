"""Per-variant aggregates, computed from the run log alone (pure functions, no model calls).

The summaries are put together as plain dicts (deltas added per model) and validated into
:class:`~quantmatrix.analysis.variant_model.VariantSummary` once, with the divergence figures.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from quantmatrix.analysis.certified_model import CertifiedBlock
from quantmatrix.analysis.divergence_model import Divergence
from quantmatrix.analysis.generation import generation_summaries
from quantmatrix.analysis.stats.describe import wilson_ci
from quantmatrix.analysis.variant_model import ContextMemoryPoint, VariantSummary
from quantmatrix.config import ModelSpec
from quantmatrix.decide import tier
from quantmatrix.kvcache import split_label
from quantmatrix.runlog import (
    ContextMemoryRow,
    RunLog,
    SampleRow,
    SampleTiming,
    TimingRow,
    VariantRow,
)
from quantmatrix.tasks import multiple_choice


def wilson(k: int, n: int) -> tuple[float | None, float | None]:
    """95% Wilson score interval (:func:`stats.wilson_ci`); (None, None) for no items."""
    return wilson_ci(k, n) or (None, None)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def accuracy_block(rows: list[SampleRow]) -> dict[str, Any]:
    """Raw and rescored accuracy with a Wilson CI, and the unparsed rate, for some rows."""
    scores = [multiple_choice.score_row(r) for r in rows]
    n = len(scores)
    k = sum(s["correct"] for s in scores)
    low, high = wilson(k, n)
    return {
        "n": n,
        "correct": k,
        "accuracy": _ratio(k, n),
        "ci_low": low,
        "ci_high": high,
        "raw_exact": _ratio(sum(s["raw_exact"] for s in scores), n),
        "unparsed": n - sum(s["parsed"] for s in scores),
        "unparsed_rate": _ratio(n - sum(s["parsed"] for s in scores), n),
    }


class _Timed(Protocol):
    @property
    def timing(self) -> SampleTiming: ...


def _timing_block(rows: Iterable[_Timed]) -> dict[str, Any]:
    ts = [r.timing for r in rows]
    ttft = [t.ttft_s for t in ts if t.ttft_s is not None]
    dec_tokens = sum(t.decode_tokens or 0 for t in ts)
    dec_s = sum(t.decode_s or 0.0 for t in ts)
    prompt_tokens = sum(t.prompt_tokens for t in ts)
    prompt_s = sum(t.prompt_eval_s or 0.0 for t in ts)
    wall = sum(t.wall_s for t in ts)
    return {
        "native_decode_tps": _ratio(dec_tokens, dec_s),
        "native_prompt_tps": _ratio(prompt_tokens, prompt_s),
        "wall_tps": _ratio(sum(t.generated_tokens for t in ts), wall),
        "ttft_mean_s": statistics.fmean(ttft) if ttft else None,
        "ttft_median_s": statistics.median(ttft) if ttft else None,
        "mean_generated_tokens": _ratio(sum(t.generated_tokens for t in ts), len(ts)),
        "mean_prompt_tokens": _ratio(prompt_tokens, len(ts)),
        "wall_s": wall,
        "native_s": prompt_s + dec_s,
    }


def _last_variant_rows(log: RunLog) -> dict[str, dict[str, Any]]:
    keep = ("file", "memory", "reconstructed", "source_type", "origin", "source", "imatrix")
    return {
        r.variant: {**{k: getattr(r, k) for k in keep}, "batch_size": r.backend.get("batch_size")}
        for r in log.variants
    }


def _session_overhead(log: RunLog, variant: str) -> dict[str, float | None]:
    rows: list[VariantRow] = [r for r in log.variants if r.variant == variant]
    wall = sum(r.session_eval_wall_s for r in rows)
    native = sum(r.session_native_s for r in rows)
    return {"eval_wall_s": wall, "native_s": native, "harness_overhead": _ratio(wall, native)}


def variant_summaries(
    log: RunLog, divergence: Divergence, certified: Mapping[str, CertifiedBlock] | None = None
) -> tuple[VariantSummary, ...]:
    """One summary per variant, ordered by model (config order) then precision, each with its
    certified block (``certified``: variant id -> block) where it has one."""
    blocks = certified or {}
    return tuple(
        VariantSummary.model_validate(
            {
                **s,
                **_divergence_fields(divergence, s["variant"]),
                "certified": blocks.get(s["variant"]),
            }
        )
        for s in _summary_dicts(log)
    )


def _divergence_fields(divergence: Divergence, variant: str) -> dict[str, float | None]:
    found = divergence.variants.get(variant)
    tokens = None if found is None else found.tokens
    letters = None if found is None else found.letters
    return {
        "kld_mean": None if tokens is None else tokens.kld_mean,
        "kld_p99": None if tokens is None else tokens.kld_p99,
        "top_agreement": None if tokens is None else tokens.same_top,
        "ppl_ratio": None if tokens is None else tokens.ppl_ratio,
        "letter_kl_mean": None if letters is None else letters.letter_kl_mean,
        "letter_agreement": None if letters is None else letters.argmax_agreement,
    }


def _summary_dicts(log: RunLog) -> list[dict[str, Any]]:
    study = log.study
    by_variant: dict[str, list[SampleRow]] = defaultdict(list)
    for row in log.samples:
        by_variant[row.variant].append(row)
    meta = _last_variant_rows(log)
    timed = _timing_rows(log)
    memory = _memory_rows(log)
    generation = generation_summaries(log)
    out: list[dict[str, Any]] = []
    for spec in study.models:
        for level in spec.ordered_labels:  # the level, marked +kv-TYPE for a KV type
            vid = spec.variant_id(level)
            rows = sorted(by_variant.get(vid, []), key=lambda r: (r.task, r.item))
            if not rows:
                continue
            mc = [r for r in rows if r.task_kind == "multiple_choice"]
            tasks = sorted({r.task for r in mc})
            gen = generation.get(vid)
            summary: dict[str, Any] = {
                "variant": vid,
                "model": spec.name,
                "level": level,
                "is_baseline": level == spec.baseline_label,
                **accuracy_block(mc),
                "tasks": {t: accuracy_block([r for r in mc if r.task == t]) for t in tasks},
                "generation": gen,
                "gen_delta_pct": gen.key_avg_delta_pct if gen else None,
                "timing": _timing_block(rows),
                "overhead": _session_overhead(log, vid),
                "file": (meta.get(vid) or {}).get("file"),
                "memory": (meta.get(vid) or {}).get("memory"),
                "reconstructed": (meta.get(vid) or {}).get("reconstructed"),
                "source_type": (meta.get(vid) or {}).get("source_type"),
                **_origin_fields(meta.get(vid) or {}),
                **_batch_field(meta.get(vid) or {}),
                **_single_stream_field(timed.get(vid, [])),
                **_kv_field(spec, level),
                **_context_memory_field(memory.get(vid, [])),
            }
            out.append(summary)
        _add_deltas([s for s in out if s["model"] == spec.name], spec.baseline_label)
    return out


def _memory_rows(log: RunLog) -> dict[str, list[ContextMemoryRow]]:
    by_variant: dict[str, list[ContextMemoryRow]] = defaultdict(list)
    for row in sorted(log.memory, key=lambda r: r.key):
        by_variant[row.variant].append(row)
    return by_variant


def _context_memory_field(rows: list[ContextMemoryRow]) -> dict[str, Any]:
    """The memory phase's points, when it ran for the variant (older logs: nothing)."""
    if not rows:
        return {}
    names = ContextMemoryPoint.model_fields
    return {"context_memory": [{k: getattr(r, k) for k in names} for r in rows]}


def _kv_field(spec: ModelSpec, label: str) -> dict[str, Any]:
    """The variant's KV-cache type, when its model has a KV axis (``kv_cache`` in the study;
    studies without one keep their summaries' shape)."""
    return {} if spec.kv_cache is None else {"kv_cache": split_label(label)[1]}


def _origin_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Where the weights came from (variants rows of schema 2; older rows say nothing, and
    their summaries keep the old shape)."""
    if row.get("origin") is None:
        return {}
    return {"origin": row["origin"], "source": row.get("source"), "imatrix": row.get("imatrix")}


def _batch_field(row: dict[str, Any]) -> dict[str, Any]:
    """The batch size the engine decoded with, when the backend says (the embedded engine,
    since batching; other backends and older rows say nothing, their summaries unchanged)."""
    size = row.get("batch_size")
    return {} if size is None else {"batch_size": int(size)}


def _timing_rows(log: RunLog) -> dict[str, list[TimingRow]]:
    """Each variant's single-stream timing rows that answered (an errored request has no
    speed), in key order."""
    by_variant: dict[str, list[TimingRow]] = defaultdict(list)
    for row in sorted(log.timing, key=lambda r: r.key):
        if row.error is None:
            by_variant[row.variant].append(row)
    return by_variant


def _single_stream_field(rows: list[TimingRow]) -> dict[str, Any]:
    """The timing phase's figures, when it ran for the variant (older logs: nothing, their
    summaries unchanged)."""
    return {"single_stream": _timing_block(rows)} if rows else {}


def _add_deltas(summaries: list[dict[str, Any]], baseline: str) -> None:
    base = next((s for s in summaries if s["level"] == baseline), None)
    for s in summaries:
        s["delta_pp"] = None
        if base is not None and s["accuracy"] is not None and base["accuracy"] is not None:
            s["delta_pp"] = 100.0 * (s["accuracy"] - base["accuracy"])
        s["tier"] = tier(s["delta_pp"], s["gen_delta_pct"]) if base is not None else None
        for t, block in s["tasks"].items():
            if base is None:
                block["delta_pp"] = None
                continue
            b = base["tasks"].get(t)
            block["delta_pp"] = (
                100.0 * (block["accuracy"] - b["accuracy"])
                if b and b["accuracy"] is not None
                else None
            )
