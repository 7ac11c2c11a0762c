"""Divergence from the baseline, per variant: pure functions of the letter distributions in
``samples.jsonl`` and of ``kld.jsonl`` rows (``load_divergence`` only reads them).

Letter level: KL(baseline || variant) between the two letter distributions (renormalised over
the options) of each item, with a seeded percentile-bootstrap CI of its mean; argmax agreement
with the baseline; expected accuracy (mean probability on the gold letter).
Token level: mean KL over every corpus position, its median / 99th percentile, "same top token"
(the variant's argmax equals the baseline's) and the perplexity ratio PPL(variant)/PPL(baseline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from quantmatrix.analysis.divergence_model import (
    Divergence,
    DivergenceCliff,
    DivergenceVariant,
    LetterStats,
    TokenStats,
)
from quantmatrix.kvcache import label_rank
from quantmatrix.runlog.rows import KldRow, SampleRow
from quantmatrix.scoring.divergence import argmax_agreement, kl_probs

Row = dict[str, Any]


def bootstrap_mean_ci(
    values: npt.ArrayLike, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (numpy ``default_rng(seed)``)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return (float(lo), float(hi))


def _pct(x: np.ndarray[Any, Any], q: float) -> float:
    return float(np.percentile(x, q)) if x.size else float("nan")


def _usable(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.get("kind") == "letterprob" and r.get("dist") is not None]


def _by_variant_item(rows: Sequence[Row]) -> dict[str, dict[str, Row]]:
    out: dict[str, dict[str, Row]] = {}
    for r in _usable(rows):
        out.setdefault(r["variant"], {}).setdefault(r["item"], r)
    return out


def letter_rows(samples: Sequence[SampleRow], baseline_by_model: Mapping[str, str]) -> list[Row]:
    """The letter distributions that multiple-choice sample rows carry (``letters``), as rows
    of their own, each naming its model's baseline variant."""
    return [
        {"kind": "letterprob", "variant": r.variant, "model": r.model,
         "level": r.level, "baseline": baseline_by_model.get(r.model),
         "task": r.task, "item": f"{r.task}|{r.item}", **r.letters.model_dump(mode="json")}
        for r in samples
        if r.letters and not r.error
    ]  # fmt: skip


def letter_summary(
    rows: Sequence[Row], n_boot: int = 2000, seed: int = 0
) -> dict[str, LetterStats]:
    """Per variant: letter-KL vs its baseline (mean, CI, percentiles), argmax agreement,
    expected accuracy, argmax accuracy, mean letter mass and entropy."""
    table = _by_variant_item(rows)
    out: dict[str, LetterStats] = {}
    for variant, items in table.items():
        first = next(iter(items.values()))
        base = table.get(first["baseline"], {})
        shared = [i for i in items if i in base]
        kl = np.array(
            [float(kl_probs(base[i]["dist"], items[i]["dist"])) for i in shared], dtype=float
        )
        mine = list(items.values())
        out[variant] = LetterStats(
            n_items=len(mine),
            n_compared=len(shared),
            letter_kl_mean=float(kl.mean()) if kl.size else None,
            letter_kl_ci=bootstrap_mean_ci(kl, n_boot, seed) if kl.size else None,
            letter_kl_p50=_pct(kl, 50) if kl.size else None,
            letter_kl_p90=_pct(kl, 90) if kl.size else None,
            letter_kl_p99=_pct(kl, 99) if kl.size else None,
            argmax_agreement=argmax_agreement(
                [base[i]["pred"] for i in shared], [items[i]["pred"] for i in shared]
            )
            if shared
            else None,
            expected_accuracy=float(np.mean([r["p_gold"] for r in mine])),
            accuracy=float(np.mean([r["correct"] for r in mine])),
            letter_mass=float(np.mean([r["letter_mass"] for r in mine])),
            entropy=float(np.mean([r["entropy"] for r in mine])),
        )
    return out


def _current_corpus(rows: Sequence[KldRow]) -> dict[str, str]:
    """Per baseline, the corpus digest of its most recent row (older corpora are ignored)."""
    latest: dict[str, str] = {}
    for r in rows:
        if r.variant == r.baseline:
            latest[r.baseline] = r.corpus_sha256
    return latest


def kld_summary(rows: Sequence[KldRow]) -> dict[str, TokenStats]:
    """Per variant: token-level KL statistics over all corpus positions, same-top, PPL ratio."""
    corpus = _current_corpus(rows)
    chunks: dict[str, dict[int, KldRow]] = {}
    for r in rows:
        if corpus.get(r.baseline) == r.corpus_sha256:
            chunks.setdefault(r.variant, {}).setdefault(r.chunk, r)
    out: dict[str, TokenStats] = {}
    for variant, by_chunk in chunks.items():
        rs = [by_chunk[c] for c in sorted(by_chunk)]
        kl = np.concatenate([np.asarray(r.kl, dtype=float) for r in rs])
        kl_top = np.concatenate([np.asarray(r.kl_topk, dtype=float) for r in rs])
        n_targets = sum(r.n_targets for r in rs)
        nll = sum(r.nll_sum for r in rs) / n_targets
        base_nll = sum(r.base_nll_sum for r in rs) / n_targets
        out[variant] = TokenStats(
            n_chunks=len(rs),
            n_tokens=int(kl.size),
            kl_method=rs[0].kl_method,
            kld_mean=float(kl.mean()),
            kld_median=_pct(kl, 50),
            kld_p99=_pct(kl, 99),
            kld_max=float(kl.max()),
            kld_topk_mean=float(kl_top.mean()),
            same_top=sum(r.same_top for r in rs) / kl.size,
            ppl=float(np.exp(nll)),
            ppl_base=float(np.exp(base_nll)),
            ppl_ratio=float(np.exp(nll - base_nll)),
        )
    return out


def _order_key(variant: DivergenceVariant) -> tuple[str, tuple[int, int], str]:
    """Model, then down the ladder: level, then KV type (``kvcache.label_rank``)."""
    return (variant.model, label_rank(variant.level), variant.level)


def summarize_divergence(
    letter_rows: Sequence[Row], kld_rows: Sequence[KldRow], n_boot: int = 2000, seed: int = 0
) -> Divergence:
    """Everything the report needs: each variant's letter and token divergence, in order."""
    letters = letter_summary(letter_rows, n_boot, seed)
    tokens = kld_summary(kld_rows)
    heads: dict[str, Row] = {}
    named = [(r["variant"], r["model"], r["level"], r["baseline"]) for r in _usable(letter_rows)]
    named += [(r.variant, r.model, r.level, r.baseline) for r in kld_rows]
    for vid, model, level, baseline in named:
        heads.setdefault(vid, {"model": model, "level": level, "baseline": baseline})
    variants = {
        vid: DivergenceVariant(**head, letters=letters.get(vid), tokens=tokens.get(vid))
        for vid, head in heads.items()
    }
    order = sorted(variants, key=lambda vid: _order_key(variants[vid]))
    return Divergence(variants=variants, order=tuple(order), n_boot=n_boot, seed=seed)


def load_divergence(run_dir: Path, n_boot: int = 2000, seed: int = 0) -> Divergence:
    from quantmatrix.runlog import RunLog

    log = RunLog.load(run_dir)
    letters = letter_rows(log.samples, log.study.baseline_variants())
    return summarize_divergence(letters, log.kld, n_boot, seed)


def metric_value(v: DivergenceVariant, metric: str) -> float | None:
    """A ``TokenStats`` field (``kld_*``) or a ``LetterStats`` one, None when not measured."""
    section: TokenStats | LetterStats | None = v.tokens if metric.startswith("kld") else v.letters
    value = None if section is None else getattr(section, metric, None)
    return None if value is None else float(value)


def _largest_step(levels: list[str], values: list[float], log: bool) -> str | None:
    """The level whose step from the previous (more precise) level is largest."""
    if len(values) < 2:
        return levels[0] if levels else None
    x = np.log(np.maximum(values, 1e-12)) if log else np.asarray(values)
    return levels[int(np.argmax(np.diff(x))) + 1]


def cliff_agreement(
    div: Divergence, accuracy_delta_by_variant: Mapping[str, float], metric: str = "kld_mean"
) -> dict[str, DivergenceCliff]:
    """Per model: where the divergence ``metric`` (log steps) and the accuracy drop (linear
    steps, from ``accuracy_delta_by_variant``: variant id -> accuracy minus the baseline's)
    each take their largest step down the ladder, whether those levels agree, and the Spearman
    correlation of the two across levels. The baseline itself is left out."""
    out: dict[str, DivergenceCliff] = {}
    models = {div.variants[vid].model for vid in div.order}
    for model in sorted(models):
        levels, kld, drop = [], [], []
        for vid in div.order:
            v = div.variants[vid]
            value = metric_value(v, metric)
            if v.model != model or vid == v.baseline or value is None:
                continue
            if vid in accuracy_delta_by_variant:
                levels.append(v.level)
                kld.append(value)
                drop.append(-float(accuracy_delta_by_variant[vid]))
        kld_cliff = _largest_step(levels, kld, log=True)
        acc_cliff = _largest_step(levels, drop, log=False)
        rho = stats.spearmanr(kld, drop).statistic if len(levels) >= 3 else float("nan")
        out[model] = DivergenceCliff(
            metric=metric,
            levels=tuple(levels),
            divergence=tuple(kld),
            accuracy_drop=tuple(drop),
            divergence_cliff=kld_cliff,
            accuracy_cliff=acc_cliff,
            agree=kld_cliff == acc_cliff and kld_cliff is not None,
            spearman=None if np.isnan(rho) else float(rho),
        )
    return out
