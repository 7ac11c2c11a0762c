"""One long document through one variant (the long-context phase's unit of work): its windows
evaluated on one growing KV cache and compared with the baseline's stored rows, its buckets
summed as they complete, and the control for the text (each later bucket's first positions
again from an empty cache). The baseline's own pass stores the rows it compares with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantmatrix.scoring import divergence as dv
from quantmatrix.scoring.buckets import BucketStats, Positions
from quantmatrix.scoring.windows import WindowModel

WINDOW = 512  # tokens evaluated per llama_decode call (the context's n_batch)
BLOCK = 128  # positions per block mean kept in each row (the profile plot)
TOP_K, TAIL_SAMPLES = 32, 32  # the baseline rows' storage, as the KL phase's defaults
KL_METHOD = f"top{TOP_K}+tail{TAIL_SAMPLES}"  # what divergence.kl_method names these rows


def _window_base(base: dv.BaselineChunk, start: int, stop: int) -> dv.BaselineChunk:
    """The stored rows of positions ``[start, stop)`` (targets: those with a next token)."""
    return dv.BaselineChunk(base.top.rows(slice(start, stop)), base.target_logprobs[start:stop])


@dataclass(frozen=True)
class DocRows:
    """A document's stored baseline rows: the whole sequence, and per bucket after the first
    its first positions evaluated again from an empty cache (the control for the text)."""

    full: dv.BaselineChunk
    restarts: dict[int, dv.BaselineChunk]


@dataclass(frozen=True)
class Restart:
    """A bucket's first ``tokens`` positions: KL from an empty cache, and in the sequence."""

    tokens: int
    kl_sum: float
    full_kl_sum: float


Emit = Callable[[int, BucketStats, float, Restart | None], None]


@dataclass
class DocPass:
    """One document through one variant: its windows compared, its buckets summed."""

    model: WindowModel
    tokens: list[int]
    bounds: tuple[tuple[int, int], ...]
    wanted: frozenset[int]  # the buckets to write
    document: int

    def restart_span(self, bucket: int) -> tuple[int, int] | None:
        start, end = self.bounds[bucket]
        stop = min(start + WINDOW, end, len(self.tokens))
        return (start, stop) if 0 < start < stop else None

    def _seed(self, part: int) -> int:
        return self.document * 100_003 + part

    def restarts(
        self, stored: DocRows | None
    ) -> tuple[dict[int, dv.BaselineChunk], dict[int, Any]]:
        """Each bucket's first positions from an empty cache: (the baseline rows, stored here
        when ``stored`` is None; the comparisons), for the buckets that need them."""
        need = range(len(self.bounds)) if stored is None else sorted(self.wanted)
        base: dict[int, dv.BaselineChunk] = {}
        found: dict[int, Any] = {}
        for b in need:
            span = self.restart_span(b)
            if span is None:
                continue
            toks = self.tokens[span[0] : span[1] + 1]
            rows = next(iter(self.model.windows(toks[: span[1] - span[0]], WINDOW)))
            if stored is None:
                base[b] = dv.compress_chunk(rows, toks, TOP_K, False, TAIL_SAMPLES,
                                            seed=self._seed(50_000 + b))  # fmt: skip
            ref = base[b] if stored is None else stored.restarts[b]
            found[b] = dv.compare_chunk(ref, rows, toks).kl
        return base, found

    def run(self, stored: DocRows | None, emit: Emit) -> DocRows:
        """Compare every window with ``stored`` (None: this is the baseline, stored here from
        its own rows); ``emit`` gets each wanted bucket as it completes. Returns the stored
        rows (the baseline's, complete, when it computed them)."""
        last = max((self.bounds[b][1] for b in self.wanted), default=len(self.tokens))
        limit = len(self.tokens) if stored is None else min(len(self.tokens), last)
        started = time.perf_counter()
        restart_base, restart_kl = self.restarts(stored)
        found, seconds = Positions(), np.zeros(limit)
        seconds[0] = time.perf_counter() - started  # the controls' time, in the first bucket
        parts: list[dv.BaselineChunk] = []
        left = sorted(self.wanted)
        started = time.perf_counter()
        for w, rows in enumerate(self.model.windows(self.tokens[:limit], WINDOW)):
            s, e = w * WINDOW, w * WINDOW + len(rows)
            toks = self.tokens[s : e + 1]
            if stored is None:
                parts.append(dv.compress_chunk(rows, toks, TOP_K, False, TAIL_SAMPLES,
                                               seed=self._seed(w)))  # fmt: skip
            base = parts[-1] if stored is None else _window_base(stored.full, s, e)
            found.add(dv.compare_chunk(base, rows, toks), base.top.top1, base.target_logprobs)
            now = time.perf_counter()
            seconds[s:e] += (now - started) / len(rows)
            started = now
            while left and (found.done >= self.bounds[left[0]][1] or found.done >= limit):
                b = left.pop(0)
                start, end = self.bounds[b]
                emit(b, found.bucket(start, end, BLOCK), float(seconds[start:end].sum()),
                     self._restart(b, found, restart_kl))  # fmt: skip
        if stored is not None:
            return stored
        top = dv.TopK.concat([p.top for p in parts])
        full = dv.BaselineChunk(top, np.concatenate([p.target_logprobs for p in parts]))
        return DocRows(full, restart_base)

    def _restart(self, b: int, found: Positions, kl: dict[int, Any]) -> Restart | None:
        span = self.restart_span(b)
        if span is None or b not in kl:
            return None
        n = len(kl[b])
        return Restart(n, float(np.sum(kl[b])), found.kl_sum(span[0], span[0] + n))
