"""Benchmark of the generation-quality scorer: throughput and the share of time per metric.

Scores 1,750 pairs: each of the 250 packaged references against 7 deterministic perturbations
of itself (copy, chatty prefix, word dropout, local shuffles, truncation, a degenerate loop,
an off-topic answer). Run: ``python bench/bench_scoring.py [--model minilm] [--batch-size 32]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from quantmatrix.data.generation import load_generation_items
from quantmatrix.scoring.text_scorer import METRICS, TextScorer

Perturb = Callable[[str, random.Random, str], str]


def _copy(text: str, rng: random.Random, other: str) -> str:
    return text


def _chatty(text: str, rng: random.Random, other: str) -> str:
    return "Sure! Here is my answer:\n" + text


def _dropout(text: str, rng: random.Random, other: str) -> str:
    words = text.split()
    kept = [w for w in words if rng.random() > 0.15]
    return " ".join(kept or words[:1])


def _shuffle(text: str, rng: random.Random, other: str) -> str:
    words = text.split()
    for i in range(0, len(words) - 1, 3):
        if rng.random() < 0.5:
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def _truncate(text: str, rng: random.Random, other: str) -> str:
    words = text.split()
    return " ".join(words[: max(1, int(len(words) * 0.6))])


def _loop(text: str, rng: random.Random, other: str) -> str:
    head = " ".join(text.split()[:6])
    return " ".join([head] * 4)


def _off_topic(text: str, rng: random.Random, other: str) -> str:
    return other


VARIANTS: dict[str, Perturb] = {
    "copy": _copy,
    "chatty": _chatty,
    "dropout": _dropout,
    "shuffle": _shuffle,
    "truncate": _truncate,
    "loop": _loop,
    "off_topic": _off_topic,
}


def build_pairs(seed: int = 0) -> list[tuple[str, str, str]]:
    """(variant, candidate, reference) triples: 7 per packaged reference."""
    references = [item.reference for item in load_generation_items()]
    rng = random.Random(seed)
    triples = []
    for index, reference in enumerate(references):
        other = references[(index + 37) % len(references)]
        for name, perturb in VARIANTS.items():
            triples.append((name, perturb(reference, rng, other), reference))
    return triples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mpnet")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N pairs")
    args = parser.parse_args()

    triples = build_pairs()[: args.limit]
    scorer = TextScorer(args.model)
    print(f"model {scorer.embedding_model}, BERTScore layer {scorer.bertscore_layer}")
    print(f"load {scorer.load_seconds:.1f} s")

    started = time.perf_counter()
    rows = scorer.score([(c, r) for _, c, r in triples], batch_size=args.batch_size)
    elapsed = time.perf_counter() - started
    print(f"{len(rows)} pairs in {elapsed:.1f} s: {len(rows) / elapsed:.1f} samples/s")

    total = sum(scorer.timings.values())
    print("\nshare of scoring time per metric")
    for name, seconds in sorted(scorer.timings.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<13} {seconds:8.2f} s  {100 * seconds / total:5.1f} %")

    print("\nmean score per variant")
    shown = [m for m in METRICS if m != "exact_match"]
    print("  " + f"{'variant':<10}" + "".join(f"{m[:10]:>11}" for m in shown))
    for variant in VARIANTS:
        picked = [row for (v, _, _), row in zip(triples, rows, strict=True) if v == variant]
        if picked:
            means = [statistics.fmean(row[m] for row in picked) for m in shown]
            print("  " + f"{variant:<10}" + "".join(f"{x:>11.3f}" for x in means))


if __name__ == "__main__":
    main()
