"""One document's per-position comparison with its baseline, summed per bucket of positions
(the long-context probe's rows; pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from quantmatrix.scoring.divergence import ChunkComparison

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BucketStats:
    """Positions ``[start, end)`` of one document (``n_tokens`` of them were there)."""

    start: int
    end: int
    n_tokens: int
    kl_sum: float
    kl_topk_sum: float
    kl_max: float
    same_top: int
    n_targets: int
    nll_sum: float
    base_nll_sum: float
    block_means: tuple[float, ...]


@dataclass
class Positions:
    """Per-position results of one document, extended window by window."""

    kl: list[F64] = field(default_factory=list)
    kl_topk: list[F64] = field(default_factory=list)
    same: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    targets: list[F64] = field(default_factory=list)
    base_targets: list[F64] = field(default_factory=list)

    def add(
        self, cmp: ChunkComparison, base_top1: npt.NDArray[np.int32], base_targets: F64
    ) -> None:
        self.kl.append(cmp.kl)
        self.kl_topk.append(cmp.kl_topk)
        self.same.append(cmp.top1 == base_top1)
        self.targets.append(cmp.target_logprobs)
        self.base_targets.append(base_targets)

    def kl_sum(self, start: int, stop: int) -> float:
        return float(np.concatenate(self.kl)[start:stop].sum())

    @property
    def done(self) -> int:
        """Positions compared so far."""
        return sum(len(k) for k in self.kl)

    def bucket(self, start: int, end: int, block: int) -> BucketStats:
        """The bucket's sums (call once ``done`` covers it, or the document has ended)."""
        kl = np.concatenate(self.kl)[start:end]
        top = np.concatenate(self.kl_topk)[start:end]
        tgt = np.concatenate(self.targets)[start:end]
        base = np.concatenate(self.base_targets)[start:end]
        same = np.concatenate(self.same)[start:end]
        blocks = tuple(float(kl[i : i + block].mean()) for i in range(0, len(kl), block))
        return BucketStats(
            start=start,
            end=end,
            n_tokens=int(kl.size),
            kl_sum=float(kl.sum()),
            kl_topk_sum=float(top.sum()),
            kl_max=float(kl.max()) if kl.size else 0.0,
            same_top=int(same.sum()),
            n_targets=int(tgt.size),
            nll_sum=float(-tgt.sum()),
            base_nll_sum=float(-base.sum()),
            block_means=blocks,
        )
