"""Batched scoring of (candidate, reference) pairs with lexical and model-based metrics.

Create one :class:`TextScorer` per process: it loads the sentence-embedding model once, then
scores any number of pairs in batches. Coherence is SemScore: the cosine of the two texts'
sentence embeddings. BERTScore F1 (no idf, no baseline rescaling) comes by default from the
same forward pass ("shared" backend): the embedding model's last layer gives the token
embeddings that are matched greedily, as ``bert_score`` does with that model and layer (the
slow tests check the two agree). Another BERTScore model or layer uses ``bert_score`` itself.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from quantmatrix.scoring import text_metrics
from quantmatrix.scoring.scoring_models import MPNET, ScoringModel, resolve_model

METRICS: tuple[str, ...] = (
    "rouge_l",
    "bleu",
    "bertscore_f1",
    "coherence",
    "exact_match",
    "length_ratio",
    "repetition",
    "key_avg",
)
_LEXICAL: dict[str, Callable[[str, str], float]] = {
    "rouge_l": text_metrics.rouge_l_f1,
    "bleu": text_metrics.bleu,
    "exact_match": text_metrics.exact_match,
    "length_ratio": text_metrics.length_ratio,
    "repetition": lambda candidate, _reference: text_metrics.repetition(candidate),
}
TIMED: tuple[str, ...] = (*_LEXICAL, "embedding", "bertscore_f1", "coherence")
Backend = Literal["auto", "shared", "bert-score"]
Pairs = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class _Encoded:
    """One text after the forward pass (torch tensors, L2-normalised rows)."""

    tokens: Any  # [T, D] token embeddings of the last layer
    weights: Any  # [T] 1.0 for ordinary tokens, 0.0 for CLS/SEP (bert_score without idf)
    sentence: Any  # [D] sentence embedding


class TextScorer:
    """Scores generations against references; models are loaded once, in ``__init__``.

    ``model``: ``"mpnet"`` (all-mpnet-base-v2, default), ``"minilm"`` (all-MiniLM-L6-v2), a
    local folder or a Hub name. BERTScore uses the same model and its last layer unless
    ``bertscore_model``/``bertscore_layer`` say otherwise. Packaged models and local folders
    load with the Hugging Face Hub offline. Reference encodings are cached (up to
    ``cache_size`` texts), since every variant of a model is scored against the same ones.
    """

    def __init__(
        self,
        model: str = MPNET,
        *,
        bertscore_model: str | None = None,
        bertscore_layer: int | None = None,
        bertscore_backend: Backend = "auto",
        cache_dir: Path | None = None,
        device: str = "cpu",
        num_threads: int | None = None,
        cache_size: int = 512,
    ) -> None:
        started = time.perf_counter()
        embedder = resolve_model(model, cache_dir)
        scorer = resolve_model(bertscore_model, cache_dir) if bertscore_model else embedder
        _prepare_environment(embedder, scorer)
        _set_threads(num_threads)
        self.embedding_model: str = embedder.name
        self.bertscore_model: str = scorer.name
        self.bertscore_layer: int = _pick_layer(scorer, bertscore_layer)
        self.bertscore_backend: str = _pick_backend(
            bertscore_backend, embedder, scorer, self.bertscore_layer
        )
        self._embedder = _load_embedder(embedder.location, device)
        self._bertscorer: Any = None
        if self.bertscore_backend == "bert-score":
            self._bertscorer = _load_bertscorer(scorer.location, self.bertscore_layer, device)
        special = {self._embedder.tokenizer.cls_token_id, self._embedder.tokenizer.sep_token_id}
        self._special_ids = special - {None}
        self._cache: dict[str, _Encoded] = {}
        self._cache_size = cache_size
        for metric in _LEXICAL.values():  # first calls import and build their backends
            metric("warm up", "warm up")
        self.load_seconds: float = time.perf_counter() - started
        self.timings: dict[str, float] = dict.fromkeys(TIMED, 0.0)

    def score(self, pairs: Pairs, batch_size: int = 32) -> list[dict[str, float]]:
        """Score (candidate, reference) pairs; one dict of :data:`METRICS` per pair.

        Models run on batches of ``batch_size`` texts. A pair where either side is empty (or
        only whitespace) gets 0 for BERTScore and coherence, or 1 when both sides are.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        cols: dict[str, list[float]] = {}
        for name, metric in _LEXICAL.items():
            with self._timed(name):
                cols[name] = [metric(c, r) for c, r in pairs]
        fixed, todo = _split_empty(pairs)
        with self._timed("embedding"):
            encoded = self._encode([t for i in todo for t in pairs[i]], pairs, batch_size)
        with self._timed("coherence"):
            cols["coherence"] = _fill(fixed, todo, [_cosine(pairs[i], encoded) for i in todo])
        with self._timed("bertscore_f1"):
            cols["bertscore_f1"] = _fill(
                fixed, todo, self._bertscore(pairs, todo, encoded, batch_size)
            )
        cols["key_avg"] = [
            text_metrics.key_metric_average(b, c, r)
            for b, c, r in zip(
                cols["bertscore_f1"], cols["coherence"], cols["rouge_l"], strict=True
            )
        ]
        return [{name: cols[name][i] for name in METRICS} for i in range(len(pairs))]

    def reset_timings(self) -> None:
        self.timings = dict.fromkeys(TIMED, 0.0)

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] += time.perf_counter() - started

    def _encode(self, texts: list[str], pairs: Pairs, batch_size: int) -> dict[str, _Encoded]:
        unique = list(dict.fromkeys(texts))
        new = [t for t in unique if t not in self._cache]
        outputs = (
            self._embedder.encode(
                new, batch_size=batch_size, output_value=None, show_progress_bar=False
            )
            if new
            else []
        )
        encoded = {t: self._cache[t] for t in unique if t in self._cache}
        encoded.update({t: self._to_encoded(out) for t, out in zip(new, outputs, strict=True)})
        self._remember({r for _, r in pairs}, encoded)
        return encoded

    def _to_encoded(self, out: dict[str, Any]) -> _Encoded:
        import torch

        length = int(out["attention_mask"].sum())
        ids = out["input_ids"][:length]
        tokens = torch.nn.functional.normalize(out["token_embeddings"][:length].float(), dim=-1)
        weights = torch.tensor([0.0 if int(i) in self._special_ids else 1.0 for i in ids])
        sentence = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=-1)
        return _Encoded(tokens.cpu(), weights, sentence.cpu())

    def _remember(self, references: set[str], encoded: dict[str, _Encoded]) -> None:
        for text in references:
            if text in encoded and text not in self._cache:
                if len(self._cache) >= self._cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[text] = encoded[text]

    def _bertscore(
        self, pairs: Pairs, todo: list[int], encoded: dict[str, _Encoded], batch_size: int
    ) -> list[float]:
        if self._bertscorer is None:
            return [_greedy_f1(encoded[pairs[i][0]], encoded[pairs[i][1]]) for i in todo]
        if not todo:
            return []
        cands, refs = [pairs[i][0] for i in todo], [pairs[i][1] for i in todo]
        _, _, f1 = self._bertscorer.score(cands, refs, batch_size=batch_size)
        return [_clip(float(v)) for v in f1.tolist()]


def _greedy_f1(cand: _Encoded, ref: _Encoded) -> float:
    """BERTScore F1 of one pair: greedy cosine matching, CLS/SEP left out of the averages.

    Equal to ``bert_score`` (within 1e-6) except where a token's best cosine is negative:
    ``bert_score`` then takes 0 from its batch padding, so its value depends on the batch;
    here it is the true maximum (this only happens between unrelated texts).
    """
    sim = cand.tokens @ ref.tokens.T
    precision = _weighted_mean(sim.max(dim=1).values, cand.weights)
    recall = _weighted_mean(sim.max(dim=0).values, ref.weights)
    total = precision + recall
    return _clip(2 * precision * recall / total) if total > 0 else 0.0


def _weighted_mean(values: Any, weights: Any) -> float:
    weight = float(weights.sum())
    if weight == 0.0:  # a text of special tokens only: plain mean
        return float(values.mean())
    return float((values * weights).sum()) / weight


def _cosine(pair: tuple[str, str], encoded: dict[str, _Encoded]) -> float:
    return _clip(float(encoded[pair[0]].sentence @ encoded[pair[1]].sentence))


def _split_empty(pairs: Pairs) -> tuple[list[float], list[int]]:
    """Fixed scores for pairs with an empty side, and the indices left to compute."""
    fixed: list[float] = []
    todo: list[int] = []
    for i, (cand, ref) in enumerate(pairs):
        cand_empty, ref_empty = not cand.strip(), not ref.strip()
        fixed.append(1.0 if cand_empty and ref_empty else 0.0)
        if not (cand_empty or ref_empty):
            todo.append(i)
    return fixed, todo


def _fill(fixed: list[float], todo: list[int], computed: list[float]) -> list[float]:
    values = list(fixed)
    for i, value in zip(todo, computed, strict=True):
        values[i] = value
    return values


def _clip(value: float) -> float:
    """Remove float noise past the valid range of a cosine."""
    return max(-1.0, min(1.0, value))


def _prepare_environment(*models: ScoringModel) -> None:
    if all(m.local for m in models):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _set_threads(num_threads: int | None) -> None:
    import torch

    if num_threads is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else ()
        num_threads = len(affinity) or os.cpu_count() or 1
    torch.set_num_threads(num_threads)


def _pick_layer(model: ScoringModel, layer: int | None) -> int:
    if layer is not None:
        return layer
    if model.num_layers is not None:
        return model.num_layers
    from bert_score.utils import model2layers

    known = model2layers.get(model.location)
    if not isinstance(known, int):
        raise ValueError(f"no default BERTScore layer for {model.location}; pass bertscore_layer")
    return known


def _pick_backend(wanted: Backend, embedder: ScoringModel, scorer: ScoringModel, layer: int) -> str:
    shareable = scorer.location == embedder.location and layer == embedder.num_layers
    if wanted == "shared" and not shareable:
        raise ValueError(
            "bertscore_backend='shared' needs the embedding model and its last layer; "
            f"got {scorer.name} layer {layer}"
        )
    if wanted == "auto":
        return "shared" if shareable else "bert-score"
    return wanted


def _load_embedder(location: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    _quiet_transformers()
    return SentenceTransformer(location, device=device)


def _load_bertscorer(location: str, layer: int, device: str) -> Any:
    from bert_score import BERTScorer

    _quiet_transformers()
    return BERTScorer(model_type=location, num_layers=layer, device=device)


def _quiet_transformers() -> None:
    hf_logging: Any = importlib.import_module("transformers.utils.logging")
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
