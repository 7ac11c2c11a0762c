"""The sizes of a study and the resolution they give, in words (pure).

"One question moves accuracy by 100/n pp" is exact. The width of a paired change's certified
interval depends on how many answers differ between a level and its baseline, which is not known
before the run; it is given for :data:`DISCORDANCE` of the items differing (each way equally
often) at the study's own per-interval alpha (``stopping.rule.study_alpha``: 5% family-wise over
the tier bounds and signals). Fixed sampling: the normal approximation of the paired interval
(the analysis uses Tango's score interval, close to it at these sizes). Adaptive sampling: the
betting confidence sequence the stopping rule and the certified tiers use, computed on such a
sequence of differences (``stopping.betting``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from quantmatrix.config import Study
from quantmatrix.decide import TIER_BOUNDS_BENCH
from quantmatrix.stopping.betting import unit_interval
from quantmatrix.stopping.rule import study_alpha
from quantmatrix.tasks.base import Sample

DISCORDANCE = 0.20  # share of items whose answer differs from the baseline's (an assumption)


def mc_range(study: Study, n_mc: int) -> tuple[int, int]:
    """Multiple-choice items one variant asks: (fewest, most). Fixed: all of them."""
    if study.sampling.mode == "fixed" or n_mc == 0:
        return n_mc, n_mc
    looks = study.sampling.looks(n_mc)
    return looks[0], looks[-1]


def design_line(study: Study, samples: Sequence[Sample]) -> str:
    """Items per task, sampling and batching in one line."""
    counts = Counter(s.task for s in samples if s.kind == "multiple_choice")
    mc = " + ".join(f"{n} {task}" for task, n in counts.items()) or "no multiple choice"
    gen = sum(s.kind == "generation" for s in samples)
    s = study.sampling
    how = (
        f"adaptive, {s.min_items} to {s.max_items} per variant in rounds of {s.round}"
        if s.mode == "adaptive"
        else "fixed: every item"
    )
    batched = any(m.backend == "llamacpp" for m in study.models) and study.batch_size > 1
    batch = f"; batches of {study.batch_size} on llama.cpp" if batched else ""
    return f"{mc} multiple-choice items ({how}); {gen} generation prompts{batch}"


def fixed_halfwidth_pp(n: int, alpha: float, discordance: float = DISCORDANCE) -> float:
    """Half-width (pp) of a paired change's normal-approximation interval at ``n`` items."""
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    return 100.0 * z * math.sqrt(discordance / n)


def _differences(n: int, discordance: float) -> np.ndarray:
    """``n`` paired differences with ``discordance`` of them +-1 (alternating), evenly spread."""
    out = np.zeros(n)
    hits = round(discordance * n)
    for k, pos in enumerate(np.linspace(0, n - 1, hits).round().astype(int) if hits else []):
        out[pos] = 1.0 if k % 2 == 0 else -1.0
    return out


def betting_halfwidth_pp(
    n: int, alpha: float, horizon: int, discordance: float = DISCORDANCE
) -> float:
    """Half-width (pp) of the betting confidence sequence of a paired change after ``n`` items."""
    z = (_differences(n, discordance) + 1.0) / 2.0
    low, high = unit_interval(z[None, :], alpha, horizon)
    return float(100.0 * (high[0] - low[0]))


def items_for(halfwidth_pp: float, alpha: float, discordance: float = DISCORDANCE) -> int:
    """Paired items a fixed design needs for a normal-approximation half-width of that size."""
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    return math.ceil(discordance * (100.0 * z / halfwidth_pp) ** 2)


def resolution_lines(study: Study, samples: Sequence[Sample]) -> tuple[str, ...]:
    """The sizes and the resolution they give, a few lines for ``plan`` and ``run``."""
    n_mc = sum(s.kind == "multiple_choice" for s in samples)
    if n_mc == 0:
        return ("no multiple-choice items: accuracy is not measured",)
    low, high = mc_range(study, n_mc)
    alpha = study_alpha(study)
    adaptive = study.sampling.mode == "adaptive"
    per = f"{low} to {high}" if low != high else f"{high}"
    if adaptive:
        width = betting_halfwidth_pp(high, alpha, study.sampling.max_items)
        method = "betting confidence sequence"
    else:
        width = fixed_halfwidth_pp(high, alpha)
        method = "normal approximation"
    bound = -TIER_BOUNDS_BENCH[0][1]
    return (
        f"{per} multiple-choice items per variant: one question moves accuracy by "
        f"{100.0 / high:.1f}pp",
        f"a paired change vs the baseline is certified to about +-{width:.1f}pp at {high} "
        f"items ({1 - alpha:.1%} interval, {method}, if {DISCORDANCE:.0%} of the answers "
        "differ from the baseline's)",
        f"+-{bound:.0f}pp (the negligible tier's bound) needs about "
        f"{items_for(bound, alpha):,} paired items under the same assumption",
    )
