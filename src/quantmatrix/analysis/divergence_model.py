"""The typed divergence section of an analysis (``analysis/divergence.py`` fills it)."""

from __future__ import annotations

from quantmatrix.analysis.frozen import Frozen


class LetterStats(Frozen):
    """Option-letter divergence of one variant from its baseline, over the items both answered."""

    n_items: int
    n_compared: int
    letter_kl_mean: float | None
    letter_kl_ci: tuple[float, float] | None
    letter_kl_p50: float | None
    letter_kl_p90: float | None
    letter_kl_p99: float | None
    argmax_agreement: float | None
    expected_accuracy: float
    accuracy: float
    letter_mass: float
    entropy: float


class TokenStats(Frozen):
    """Token-level KL of one variant vs its baseline over every corpus position."""

    n_chunks: int
    n_tokens: int
    kl_method: str
    kld_mean: float
    kld_median: float
    kld_p99: float
    kld_max: float
    kld_topk_mean: float
    same_top: float
    ppl: float
    ppl_base: float
    ppl_ratio: float


class DivergenceVariant(Frozen):
    model: str
    level: str
    baseline: str | None
    letters: LetterStats | None
    tokens: TokenStats | None


class Divergence(Frozen):
    """variant id -> its divergence; ``order`` by model then level (most precise first)."""

    variants: dict[str, DivergenceVariant]
    order: tuple[str, ...]
    n_boot: int
    seed: int


class DivergenceCliff(Frozen):
    """Where divergence and accuracy drop take their largest step down one model's ladder."""

    metric: str
    levels: tuple[str, ...]
    divergence: tuple[float, ...]
    accuracy_drop: tuple[float, ...]
    divergence_cliff: str | None
    accuracy_cliff: str | None
    agree: bool
    spearman: float | None
