"""The long-context probe's many-shot multiple choice, per level and bucket (pure functions of
the ``many_shot`` sample rows: ``RunLog.many_shot``, never counted in the main accuracy).

Per bucket: accuracy with its Wilson interval; the paired change vs the baseline on the same
questions in the same bucket (Tango's score interval, ``stats/paired.py``); the share of the
baseline's answers repeated (Wilson); the prompt tokens the replies logged (the plan chose the
examples by a character estimate: ``outside`` counts replies that landed outside their bucket).
Across buckets: per question, the variant's loss vs the baseline at the last bucket minus its
loss at the first, with a t-interval over questions whose spread counts one pseudo-question at
each of +-100 pp (``stats/trend.padded_mean_interval``: eight questions that all answer alike
do not make a zero-width interval); "loss grows" when it lies below 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quantmatrix.analysis.long_context import interval
from quantmatrix.analysis.probes_model import (
    Interval,
    LevelManyShot,
    ManyShotBucket,
    ManyShotTrend,
)
from quantmatrix.analysis.stats.describe import wilson_ci
from quantmatrix.analysis.stats.paired import CERTIFY_METHOD, PairedCounts, interval_of_counts
from quantmatrix.analysis.stats.trend import padded_mean_interval
from quantmatrix.config import Study
from quantmatrix.runlog import SampleRow
from quantmatrix.tasks import multiple_choice


@dataclass(frozen=True)
class Answer:
    correct: bool
    pred: str | None
    prompt_tokens: int
    prompt_s: float | None


Table = dict[int, dict[str, Answer]]  # bucket -> item -> answer


def _answers(rows: Sequence[SampleRow]) -> Table:
    out: Table = defaultdict(dict)
    for r in rows:
        s = multiple_choice.score_row(r)
        t = r.timing
        out[int(r.input["bucket"])][r.item] = Answer(
            bool(s["correct"]), s["pred"], t.prompt_tokens, t.prompt_eval_s
        )
    return out


def proportion(k: int, n: int) -> Interval:
    """``k`` of ``n`` with its Wilson interval (no interval for no items)."""
    ci = wilson_ci(k, n)
    if ci is None:
        return Interval(value=0.0, low=None, high=None, n=0)
    return Interval(value=k / n, low=ci[0], high=ci[1], n=n)


def _vs_base(mine: dict[str, Answer], base: dict[str, Answer]) -> tuple[Interval, Interval]:
    keys = sorted(set(mine) & set(base))
    counts = PairedCounts.of([base[k].correct for k in keys], [mine[k].correct for k in keys])
    pc = interval_of_counts(counts, 0.05, CERTIFY_METHOD)
    same = sum(mine[k].pred == base[k].pred for k in keys)
    return Interval(value=pc.change, low=pc.low, high=pc.high, n=pc.n), proportion(same, len(keys))


def _bucket(b: int, rows: Sequence[SampleRow], mine: dict[str, Answer],
            base: dict[str, Answer] | None) -> ManyShotBucket:  # fmt: skip
    first = rows[0].input
    start, end = int(first["bucket_start"]), int(first["bucket_end"])
    tokens = sorted(a.prompt_tokens for a in mine.values())
    change, same = (None, None) if base is None else _vs_base(mine, base)
    times = [a.prompt_s for a in mine.values() if a.prompt_s is not None]
    return ManyShotBucket(
        bucket=b,
        start=start,
        end=end,
        shots=int(first["shots"]),
        prompt_tokens=(tokens[0], tokens[len(tokens) // 2], tokens[-1]),
        outside=sum(not start <= t < end for t in tokens),
        accuracy=proportion(sum(a.correct for a in mine.values()), len(mine)),
        change_pp=change,
        same_answer=same,
        prompt_s=float(np.mean(times)) if times else None,
    )


def _trend(mine: Table, base: Table) -> ManyShotTrend | None:
    if len(mine) < 2:
        return None
    first, last = min(mine), max(mine)
    keys = sorted(set(mine[first]) & set(mine[last]) & set(base.get(first, {}))
                  & set(base.get(last, {})))  # fmt: skip
    diffs = [
        100.0 * ((mine[last][k].correct - base[last][k].correct)
                 - (mine[first][k].correct - base[first][k].correct))
        for k in keys
    ]  # fmt: skip
    change = interval(padded_mean_interval(diffs, 100.0))
    if change.low is None or change.high is None:
        word = "no interval"
    elif change.high < 0:
        word = "loss grows"
    elif change.low > 0:
        word = "loss shrinks"
    else:
        word = "no change detected"
    return ManyShotTrend(first=first, last=last, change_pp=change, verdict=word)


def many_shot_levels(study: Study, rows: Sequence[SampleRow]) -> tuple[LevelManyShot, ...]:
    """Per level with many-shot rows (model order, most precise first)."""
    by_variant: dict[str, list[SampleRow]] = defaultdict(list)
    for r in rows:
        by_variant[r.variant].append(r)
    out = []
    for spec in study.models:
        base = _answers(by_variant.get(f"{spec.name}@{spec.baseline_level}", []))
        for level in spec.ordered_levels:
            vid = f"{spec.name}@{level}"
            mine_rows = sorted(by_variant.get(vid, []), key=lambda r: r.key)
            if not mine_rows:
                continue
            is_base = level == spec.baseline_level
            mine = _answers(mine_rows)
            per_bucket: dict[int, list[SampleRow]] = defaultdict(list)
            for r in mine_rows:
                per_bucket[int(r.input["bucket"])].append(r)
            buckets = tuple(
                _bucket(b, per_bucket[b], mine[b], None if is_base else base.get(b, {}))
                for b in sorted(mine)
            )
            out.append(
                LevelManyShot(
                    variant=vid,
                    model=spec.name,
                    level=level,
                    is_baseline=is_base,
                    task=str(mine_rows[0].input.get("source_task", "")),
                    buckets=buckets,
                    trend=None if is_base else _trend(mine, base),
                )
            )
    return tuple(out)
