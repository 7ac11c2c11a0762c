"""Batch sensitivity: do a level's answers change when requests are decoded together?

No extra requests: the timing phase asks the plan's first items one request at a time
(``timing.jsonl``, batch 1) and the evaluation asks the same items at the study's batch size
(``samples.jsonl``): the embedded engine decodes ``batch_size`` sequences of one context
together, a server gets ``in_flight`` requests at once (whether it batches them is the
server's affair: llama_cpp.server answers one at a time, llama-server and Ollama may batch
them). So the pairs are the timing subset's items (``timing.multiple_choice`` +
``timing.generation``; raise them for more pairs). Per level: the share of byte-identical
outputs (Wilson), the multiple-choice accuracy change from batch 1 to batch N (Tango's paired
score interval), and the largest change of any option letter's probability.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from quantmatrix.analysis.many_shot import proportion
from quantmatrix.analysis.probes_model import BatchLevel, BatchSensitivity, Interval
from quantmatrix.analysis.stats.paired import CERTIFY_METHOD, PairedCounts, interval_of_counts
from quantmatrix.config import ModelSpec
from quantmatrix.runlog import RunLog, SampleRow, TimingRow
from quantmatrix.tasks import multiple_choice

SERVERS = ("ollama", "openai")
SHOWN = 10  # differing items named per level


def batch_of(log: RunLog, spec: ModelSpec, variant: str) -> tuple[int, str]:
    """Requests the evaluation gave a level at once, and how: the engine's batch size from
    its variant row, or a server model's ``in_flight``."""
    if spec.backend in SERVERS:
        return spec.in_flight, "in flight"
    sizes = [int(r.backend.get("batch_size") or 1) for r in log.variants if r.variant == variant]
    return max(sizes, default=1), "decoded together"


def _correct(row: SampleRow | TimingRow, inputs: Mapping[str, object]) -> bool:
    probs = None if row.letters is None else row.letters.probs
    return bool(multiple_choice.score(row.output, dict(inputs), probs)["correct"])


def _letter_diff(single: TimingRow, batched: SampleRow) -> float | None:
    if single.letters is None or batched.letters is None:
        return None
    a, b = np.asarray(single.letters.probs), np.asarray(batched.letters.probs)
    return float(np.max(np.abs(a - b))) if a.shape == b.shape else None


def _level(vid: str, spec: ModelSpec, batch: tuple[int, str],
           pairs: list[tuple[TimingRow, SampleRow]]) -> BatchLevel:  # fmt: skip
    same = [t.output == s.output for t, s in pairs]
    mc = [(t, s) for t, s in pairs if s.task_kind == "multiple_choice"]
    change: Interval | None = None
    if mc:
        counts = PairedCounts.of([_correct(t, s.input) for t, s in mc],
                                 [_correct(s, s.input) for _, s in mc])  # fmt: skip
        pc = interval_of_counts(counts, 0.05, CERTIFY_METHOD)
        change = Interval(value=pc.change, low=pc.low, high=pc.high, n=pc.n)
    diffs = [d for t, s in mc if (d := _letter_diff(t, s)) is not None]
    return BatchLevel(
        variant=vid,
        model=spec.name,
        level=vid.split("@", 1)[1],
        batch=batch[0],
        basis=batch[1],
        pairs=len(pairs),
        identical=proportion(sum(same), len(same)),
        change_pp=change,
        letter_pairs=len(diffs),
        letter_max_diff=max(diffs) if diffs else None,
        differing=tuple(s.item_key for (t, s), ok in zip(pairs, same, strict=True) if not ok)[
            :SHOWN
        ],
    )


def batch_sensitivity(log: RunLog) -> BatchSensitivity | None:
    """Per level asked at batch N > 1 with timing rows to pair; None when no level is."""
    single = {r.key: r for r in log.timing if r.error is None}
    batched = {r.key: r for r in log.samples if r.error is None}
    levels = []
    for spec in log.study.models:
        for level in spec.ordered_levels:
            vid = f"{spec.name}@{level}"
            batch = batch_of(log, spec, vid)
            pairs = [(t, batched[k]) for k, t in sorted(single.items())
                     if k[0] == vid and k in batched]  # fmt: skip
            if batch[0] > 1 and pairs:
                levels.append(_level(vid, spec, batch, pairs))
    return BatchSensitivity(levels=tuple(levels)) if levels else None
