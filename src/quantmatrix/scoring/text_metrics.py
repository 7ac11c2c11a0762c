"""Per-sample text metrics: pure functions of one candidate and one reference.

All scores are on a 0-1 scale, higher is better. The model-based metrics (BERTScore,
SemScore coherence) live in :mod:`quantmatrix.scoring.text_scorer`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = [
    "bleu",
    "exact_match",
    "key_metric_average",
    "length_ratio",
    "repetition",
    "rouge_l_f1",
]


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


def rouge_l_f1(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (longest common subsequence of tokens), as computed by ``rouge_score``.

    ``rouge_score`` keeps only ASCII letters and digits, so text with no such token scores 0.
    """
    score = _rouge_scorer().score(reference, candidate)["rougeL"]
    return float(score.fmeasure)


@lru_cache(maxsize=1)
def _bleu_metric() -> Any:
    from sacrebleu.metrics.bleu import BLEU

    # The settings of ``sacrebleu.sentence_bleu``, built once instead of per call.
    return BLEU(smooth_method="exp", effective_order=True)


def bleu(candidate: str, reference: str) -> float:
    """Sentence BLEU (1-4 grams, brevity penalty, exp smoothing) on a 0-1 scale.

    Same settings as ``sacrebleu.sentence_bleu`` (13a tokenizer, effective order).
    """
    score = float(_bleu_metric().sentence_score(candidate, [reference]).score) / 100.0
    return min(1.0, score)


def exact_match(candidate: str, reference: str) -> float:
    """1.0 when the texts are equal ignoring case and surrounding whitespace, else 0.0."""
    return 1.0 if candidate.strip().casefold() == reference.strip().casefold() else 0.0


def length_ratio(candidate: str, reference: str) -> float:
    """Shorter over longer length in words: 1.0 for equal lengths (or both empty)."""
    len_c, len_r = len(candidate.split()), len(reference.split())
    if len_c == len_r:
        return 1.0
    return min(len_c, len_r) / max(len_c, len_r)


def repetition(text: str, n: int = 4) -> float:
    """Unique n-grams over total n-grams of whitespace tokens: 1.0 means no repeats.

    Text with fewer than ``n`` tokens has no n-gram and scores 1.0.
    """
    tokens = text.split()
    if len(tokens) < n:
        return 1.0
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams)


def key_metric_average(bertscore: float, coherence: float, rouge_l: float) -> float:
    """The headline quality number: mean of BERTScore F1, coherence and ROUGE-L F1."""
    return (bertscore + coherence + rouge_l) / 3.0
