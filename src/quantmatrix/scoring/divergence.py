"""Distribution divergences between a baseline and a quantized variant: pure numpy / scipy.

All log-probabilities are natural logs (nats) and every reduction runs in float64. Rows are the
last axis: an array of shape (n, V) holds n next-token distributions over a V-token vocabulary.

Compact baseline storage (``TopK``): per row the k most probable token ids, their log-probs and
the log of the remaining mass r = 1 - sum(top-k p). ``kl_topk`` then computes the KL divergence
between the two distributions *coarsened* to k + 1 bins (the k baseline tokens and "the rest"):

    KL_k(P||Q) = sum_{i in top-k} p_i log(p_i / q_i) + r_P log(r_P / r_Q)

By the log-sum inequality 0 <= KL_k <= KL exactly (it is a lower bound), and the gap is the KL
inside the tail, at most r_P * (max_tail log(p_i / q_i) - log(r_P / r_Q)) (``topk_gap_bound``).

On high-entropy rows that gap is large (SmolLM2 on MMLU text: KL_32 is 23 % below the exact mean),
so the tail can also be *sampled*: m tokens s_j drawn from the baseline's tail distribution
p_i / r_P (systematic sampling on its CDF, seeded) with their log-probs. With the normalised
ratio v = (q_s / p_s) / (r_Q / r_P), whose tail mean is exactly 1, the gap KL - KL_k equals
r_P * E[v - 1 - log v] (a Jensen gap, each term >= 0), so

    KL_k+m(P||Q) = KL_k + r_P * mean_j (v_j - 1 - log v_j)

is an unbiased estimate of the exact KL, never below the lower bound, and of low variance (the
terms are second order in v - 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

F64 = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike


def log_softmax(logits: ArrayLike, axis: int = -1) -> F64:
    """Log-probabilities from logits (float64), through ``scipy.special.log_softmax``."""
    return np.asarray(special.log_softmax(np.asarray(logits, dtype=np.float64), axis=axis))


def kl_probs(p: ArrayLike, q: ArrayLike, axis: int = -1) -> F64:
    """KL(P||Q) of full distributions given as probabilities (``scipy.special.rel_entr``)."""
    terms = special.rel_entr(np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64))
    return np.asarray(np.sum(terms, axis=axis), dtype=np.float64)


def kl_logprobs(logp: ArrayLike, logq: ArrayLike, axis: int = -1) -> F64:
    """KL(P||Q) of full distributions given as log-probabilities (stable for tiny q)."""
    lp = np.asarray(logp, dtype=np.float64)
    lq = np.asarray(logq, dtype=np.float64)
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (lp - lq), 0.0)
    return np.asarray(np.maximum(np.sum(terms, axis=axis), 0.0), dtype=np.float64)


def entropy_probs(p: ArrayLike, axis: int = -1) -> F64:
    """Shannon entropy in nats of distributions given as probabilities."""
    return np.asarray(np.sum(special.entr(np.asarray(p, dtype=np.float64)), axis=axis))


def entropy_logprobs(logp: ArrayLike, axis: int = -1) -> F64:
    lp = np.asarray(logp, dtype=np.float64)
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):
        return np.asarray(-np.sum(np.where(p > 0, p * lp, 0.0), axis=axis))


def argmax_agreement(a: ArrayLike, b: ArrayLike) -> float:
    """Fraction of positions where two arrays of chosen ids (or letters) are equal."""
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    return float(np.mean(x == y)) if x.size else float("nan")


def perplexity(target_logprobs: ArrayLike) -> float:
    """exp(mean negative log-likelihood) of the observed next tokens."""
    lp = np.asarray(target_logprobs, dtype=np.float64)
    return float(np.exp(-np.mean(lp)))


def ppl_ratio(variant_target_logprobs: ArrayLike, base_target_logprobs: ArrayLike) -> float:
    """PPL(variant) / PPL(baseline) over the same tokens."""
    v = np.asarray(variant_target_logprobs, dtype=np.float64)
    b = np.asarray(base_target_logprobs, dtype=np.float64)
    return float(np.exp(np.mean(b) - np.mean(v)))


@dataclass(frozen=True)
class TopK:
    """Compact rows: ids (n, k) int32 and log-probs (n, k) float32 in descending order, the log
    of the mass outside the top k (n,) float32 (-inf when the top k hold everything), and
    optionally m tokens sampled from the tail: ids (n, m) int32 and log-probs (n, m) float32."""

    ids: npt.NDArray[np.int32]
    logprobs: npt.NDArray[np.float32]
    rest_logmass: npt.NDArray[np.float32]
    tail_ids: npt.NDArray[np.int32] | None = None
    tail_logprobs: npt.NDArray[np.float32] | None = None

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])

    @property
    def m(self) -> int:
        return 0 if self.tail_ids is None else int(self.tail_ids.shape[1])

    @property
    def top1(self) -> npt.NDArray[np.int32]:
        return self.ids[:, 0]

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        out = {"ids": self.ids, "logprobs": self.logprobs, "rest_logmass": self.rest_logmass}
        if self.tail_ids is not None and self.tail_logprobs is not None:
            out |= {"tail_ids": self.tail_ids, "tail_logprobs": self.tail_logprobs}
        return out

    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.arrays().values())

    def rows(self, sel: slice) -> TopK:
        return TopK(**{name: a[sel] for name, a in self.arrays().items()})

    @classmethod
    def concat(cls, parts: Sequence[TopK]) -> TopK:
        names = parts[0].arrays()
        return cls(**{n: np.concatenate([p.arrays()[n] for p in parts]) for n in names})


def _tail_logmass(logp: F64, ids: npt.NDArray[np.intp]) -> F64:
    """log of the probability mass outside ``ids`` in each row (exact, by masking)."""
    masked = logp.copy()
    np.put_along_axis(masked, ids, -np.inf, axis=-1)
    with np.errstate(divide="ignore"):
        return np.asarray(special.logsumexp(masked, axis=-1), dtype=np.float64)


def _sample_tail(
    lp: F64, ids: npt.NDArray[np.intp], m: int, rng: np.random.Generator
) -> npt.NDArray[np.intp]:
    """m ids per row from the distribution outside ``ids``: systematic sampling on its CDF."""
    p = np.exp(lp)
    np.put_along_axis(p, ids, 0.0, axis=-1)
    cdf = np.cumsum(p, axis=-1)
    grid = (np.arange(m)[None, :] + rng.random((len(lp), 1))) / m * cdf[:, -1:]
    picks = [np.searchsorted(cdf[r], grid[r], side="right") for r in range(len(lp))]
    ids_out = np.array(picks, dtype=np.intp).reshape(len(lp), m)
    return np.asarray(np.minimum(ids_out, lp.shape[-1] - 1), dtype=np.intp)


def topk_compress(
    logp_rows: ArrayLike, k: int, tail_samples: int = 0, rng: np.random.Generator | None = None
) -> TopK:
    """Keep each row's k most probable tokens and the log of the remaining mass, and optionally
    ``tail_samples`` tokens sampled from the rest (seeded by ``rng``, default seed 0)."""
    lp = np.atleast_2d(np.asarray(logp_rows, dtype=np.float64))
    k = min(k, lp.shape[-1])
    part = np.argpartition(-lp, k - 1, axis=-1)[:, :k]
    vals = np.take_along_axis(lp, part, axis=-1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    ids = np.take_along_axis(part, order, axis=-1)
    top = TopK(
        ids=ids.astype(np.int32),
        logprobs=np.take_along_axis(vals, order, axis=-1).astype(np.float32),
        rest_logmass=_tail_logmass(lp, ids).astype(np.float32),
    )
    if tail_samples <= 0:
        return top
    tail = _sample_tail(lp, ids, tail_samples, rng or np.random.default_rng(0))
    tail_lp = np.take_along_axis(lp, tail, axis=-1).astype(np.float32)
    return TopK(top.ids, top.logprobs, top.rest_logmass, tail.astype(np.int32), tail_lp)


def _rest_term(rest_p: F64, rest_q: F64) -> F64:
    r_p, l_q = np.exp(rest_p), rest_q
    with np.errstate(invalid="ignore", divide="ignore"):
        term = r_p * (rest_p - l_q)
    return np.where(r_p > 0, term, 0.0)


def _as_stored(x: F64) -> F64:
    return x.astype(np.float32).astype(np.float64)


def kl_topk(base: TopK, logq_rows: ArrayLike, sampled: bool = True) -> F64:
    """Per-row KL(P||Q): the baseline P from compact storage, the variant Q as full rows.

    With tail samples (and ``sampled``) the unbiased estimate KL_k+m, else the lower bound KL_k.
    The variant's values are rounded to float32 like the stored baseline's, so identical rows
    give exactly 0 (the rounding moves KL by about 1e-7 nats)."""
    lq = np.atleast_2d(np.asarray(logq_rows, dtype=np.float64))
    ids = base.ids.astype(np.intp)
    lp = base.logprobs.astype(np.float64)
    lq_top = _as_stored(np.take_along_axis(lq, ids, axis=-1))
    head = np.sum(np.exp(lp) * (lp - lq_top), axis=-1)
    rest_p = base.rest_logmass.astype(np.float64)
    rest_q = _as_stored(_tail_logmass(lq, ids))
    bound = np.maximum(head + _rest_term(rest_p, rest_q), 0.0)
    if not sampled or base.tail_ids is None or base.tail_logprobs is None:
        return np.asarray(bound, dtype=np.float64)
    lq_tail = _as_stored(np.take_along_axis(lq, base.tail_ids.astype(np.intp), axis=-1))
    with np.errstate(invalid="ignore", over="ignore"):
        log_v = lq_tail - base.tail_logprobs + (rest_p - rest_q)[:, None]
        gap = np.mean(np.expm1(log_v) - log_v, axis=-1)
    return np.asarray(bound + np.where(np.exp(rest_p) > 0, np.exp(rest_p) * gap, 0.0))


def topk_gap_bound(logp_rows: ArrayLike, logq_rows: ArrayLike, k: int) -> F64:
    """Per-row upper bound on KL - KL_k from the exact rows (used to check ``kl_topk``)."""
    lp = np.atleast_2d(np.asarray(logp_rows, dtype=np.float64))
    lq = np.atleast_2d(np.asarray(logq_rows, dtype=np.float64))
    top = topk_compress(lp, k)
    ids = top.ids.astype(np.intp)
    ratio = lp - lq
    np.put_along_axis(ratio, ids, -np.inf, axis=-1)
    r_p = top.rest_logmass.astype(np.float64)
    r_q = _tail_logmass(lq, ids)
    with np.errstate(invalid="ignore"):
        bound = np.exp(r_p) * (np.max(ratio, axis=-1) - (r_p - r_q))
    return np.where(np.exp(r_p) > 0, bound, 0.0)


def f16_rows(logp_rows: ArrayLike) -> npt.NDArray[np.float16]:
    """Full rows stored as float16 log-probs (2 bytes per vocabulary entry)."""
    return np.asarray(logp_rows, dtype=np.float64).astype(np.float16)


def from_f16_rows(rows: npt.NDArray[np.float16]) -> F64:
    """float16 rows back to log-probs, renormalised so each row sums to exactly one."""
    return log_softmax(rows.astype(np.float64), axis=-1)


@dataclass(frozen=True)
class BaselineChunk:
    """The baseline's rows for one corpus chunk: compact top-k, optional float16 full rows, and
    the log-prob of each observed next token (n - 1 values)."""

    top: TopK
    target_logprobs: F64
    full_f16: npt.NDArray[np.float16] | None = None


@dataclass(frozen=True)
class ChunkComparison:
    kl: F64  # per position: from float16 full rows if stored, else top-k + tail samples if
    # stored, else the top-k lower bound
    kl_topk: F64  # per position, always the top-k lower bound
    top1: npt.NDArray[np.int64]  # the variant's argmax per position
    target_logprobs: F64  # the variant's log-prob of each observed next token


def _blocks(n: int, block: int) -> list[slice]:
    return [slice(i, min(i + block, n)) for i in range(0, n, block)]


def _targets(lp: F64, tokens: npt.NDArray[np.int64], rows: slice) -> F64:
    """log p(token[i + 1]) for the rows of ``rows`` that have a next token."""
    nxt = tokens[rows.start + 1 : rows.stop + 1]
    return lp[np.arange(len(nxt)), nxt]


def compress_chunk(
    logits: ArrayLike, tokens: ArrayLike, k: int, keep_f16: bool, tail_samples: int = 0,
    seed: int = 0, block: int = 32,
) -> BaselineChunk:  # fmt: skip
    """The baseline's storage for one chunk, computed a block of rows at a time."""
    raw = np.asarray(logits)
    toks = np.asarray(tokens, dtype=np.int64)
    rng = np.random.default_rng(seed)
    tops, f16s, targets = [], [], []
    for rows in _blocks(len(raw), block):
        lp = log_softmax(raw[rows])
        tops.append(topk_compress(lp, k, tail_samples, rng))
        targets.append(_targets(lp, toks, rows))
        if keep_f16:
            f16s.append(f16_rows(lp))
    full = np.concatenate(f16s) if keep_f16 else None
    return BaselineChunk(TopK.concat(tops), np.concatenate(targets), full)


def compare_chunk(
    base: BaselineChunk, logits: ArrayLike, tokens: ArrayLike, block: int = 32
) -> ChunkComparison:
    """A variant's rows for one chunk against the stored baseline, a block of rows at a time."""
    raw = np.asarray(logits)
    toks = np.asarray(tokens, dtype=np.int64)
    kl, kl_top, top1, targets = [], [], [], []
    for rows in _blocks(len(raw), block):
        lq = log_softmax(raw[rows])
        top = base.top.rows(rows)
        kl_top.append(kl_topk(top, lq, sampled=False))
        if base.full_f16 is None and top.m:
            kl.append(kl_topk(top, lq))
        elif base.full_f16 is not None:
            # both sides at storage precision, so identical rows give exactly 0
            kl.append(kl_logprobs(from_f16_rows(base.full_f16[rows]), from_f16_rows(f16_rows(lq))))
        top1.append(np.argmax(lq, axis=-1))
        targets.append(_targets(lq, toks, rows))
    kl_topk_all = np.concatenate(kl_top)
    return ChunkComparison(
        kl=np.concatenate(kl) if kl else kl_topk_all,
        kl_topk=kl_topk_all,
        top1=np.concatenate(top1),
        target_logprobs=np.concatenate(targets),
    )
