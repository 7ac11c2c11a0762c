"""The long-context probe's token KL, per level and bucket of positions (pure functions of the
``long_context.jsonl`` rows; ``stats/trend.py`` holds the statistics and why they are over
documents)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from quantmatrix.analysis.probes_model import BucketKL, Interval, KLTrend, LevelKL, SameText
from quantmatrix.analysis.stats.trend import (
    Estimate,
    cluster_slope,
    mean_interval,
    paired_change,
    verdict,
)
from quantmatrix.config import Study
from quantmatrix.runlog import LongContextRow


def interval(e: Estimate) -> Interval:
    return Interval(value=e.value, low=e.low, high=e.high, n=e.n)


def current_rows(rows: Sequence[LongContextRow]) -> list[LongContextRow]:
    """The rows of each model's current corpus (that of its baseline's latest row)."""
    latest: dict[str, str] = {}
    for r in rows:
        if r.variant == r.baseline:
            latest[r.baseline] = r.corpus_sha256
    return [r for r in rows if latest.get(r.baseline) == r.corpus_sha256]


def _doc_mean(r: LongContextRow) -> float:
    return r.kl_sum / r.n_tokens if r.n_tokens else 0.0


def same_text(rows: Sequence[LongContextRow]) -> SameText | None:
    """The control: the bucket's first positions in the sequence vs from an empty cache."""
    ctl = [r for r in rows if r.restart_tokens]
    if not ctl:
        return None
    full = [r.restart_full_kl_sum / r.restart_tokens for r in ctl]
    fresh = [r.restart_kl_sum / r.restart_tokens for r in ctl]
    before, after = float(np.mean(fresh)), float(np.mean(full))
    return SameText(
        tokens=max(r.restart_tokens for r in ctl),
        in_sequence=after,
        restarted=before,
        change=interval(paired_change(fresh, full)),
        ratio=after / before if before > 0 else None,
    )


def _bucket(rows: Sequence[LongContextRow]) -> BucketKL:
    first = rows[0]
    tokens = sum(r.n_tokens for r in rows)
    targets = sum(r.n_targets for r in rows)
    nll = sum(r.nll_sum - r.base_nll_sum for r in rows)
    return BucketKL(
        bucket=first.bucket,
        start=first.start,
        end=first.end,
        documents=len(rows),
        tokens=tokens,
        kl=interval(mean_interval([_doc_mean(r) for r in rows])),
        same_top=sum(r.same_top for r in rows) / tokens if tokens else 0.0,
        ppl_ratio=math.exp(nll / targets) if targets else 1.0,
        seconds_per_document=float(np.mean([r.eval_s for r in rows])),
        same_text=same_text(rows),
    )


def _blocks(rows: Sequence[LongContextRow]) -> list[tuple[int, int, float]]:
    """(document, block start position, block mean) of every block of ``rows``."""
    return [
        (r.document, r.start + j * r.block_tokens, m)
        for r in rows
        for j, m in enumerate(r.kl_block_means)
    ]


def trend(rows: Sequence[LongContextRow]) -> KLTrend | None:
    """Last bucket minus first, paired within documents; the slope per doubling."""
    by_bucket: dict[int, dict[int, float]] = defaultdict(dict)
    for r in rows:
        by_bucket[r.bucket][r.document] = _doc_mean(r)
    if len(by_bucket) < 2:
        return None
    first, last = min(by_bucket), max(by_bucket)
    docs = sorted(set(by_bucket[first]) & set(by_bucket[last]))
    change = paired_change([by_bucket[first][d] for d in docs], [by_bucket[last][d] for d in docs])
    base = float(np.mean([by_bucket[first][d] for d in docs])) if docs else 0.0
    blocks = _blocks(rows)
    slope = cluster_slope(
        [m for _, _, m in blocks],
        [math.log2(pos + rows[0].block_tokens / 2) for _, pos, _ in blocks],
        [d for d, _, _ in blocks],
    )
    return KLTrend(
        first=first,
        last=last,
        change=interval(change),
        ratio=(base + change.value) / base if base > 0 and docs else None,
        slope_per_doubling=interval(slope),
        verdict=verdict(change),
    )


def _profile(rows: Sequence[LongContextRow]) -> tuple[tuple[int, float], ...]:
    at: dict[int, list[float]] = defaultdict(list)
    for _, pos, m in _blocks(rows):
        at[pos].append(m)
    return tuple((pos, float(np.mean(at[pos]))) for pos in sorted(at))


def kl_levels(study: Study, rows: Sequence[LongContextRow]) -> tuple[LevelKL, ...]:
    """Per level with rows (model order, most precise first): bucket means, trend, profile."""
    by_variant: dict[str, list[LongContextRow]] = defaultdict(list)
    for r in current_rows(rows):
        by_variant[r.variant].append(r)
    out = []
    for spec in study.models:
        for level in spec.ordered_levels:
            mine = sorted(by_variant.get(f"{spec.name}@{level}", []), key=lambda r: r.key)
            if not mine:
                continue
            buckets: dict[int, list[LongContextRow]] = defaultdict(list)
            for r in mine:
                buckets[r.bucket].append(r)
            is_base = level == spec.baseline_level
            out.append(
                LevelKL(
                    variant=mine[0].variant,
                    model=spec.name,
                    level=level,
                    is_baseline=is_base,
                    buckets=tuple(_bucket(buckets[b]) for b in sorted(buckets)),
                    trend=None if is_base else trend(mine),
                    profile=_profile(mine),
                )
            )
    return tuple(out)
