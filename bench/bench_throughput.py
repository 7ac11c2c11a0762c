"""Benchmark: the demo's items on the embedded engine, one request at a time (the old path) vs
batched sequences with the shared prompt prefix evaluated once (the new path), in one process.

The model is loaded once; the old path is the same backend's single-stream path (requests
without a batch group, exactly what ``batch_size: 1`` runs). Items go in plan order in groups of
``--batch-size``; each group is run both ways back to back, the order alternating from group to
group, so both paths see the same machine load. Reported: evaluation wall time of multiple
choice and of generation per path and their ratio (old / new), the shared prefix's share of the
prompt tokens, and the agreement of the outputs (texts, the letter read from the reply, the
most probable letter, the largest letter-probability difference).

``--sizes 1,2,4,8`` adds a sweep of aggregate decode throughput over batch sizes on the
generation items (the figure behind the default ``batch_size``), sizes interleaved rep by rep;
``--reps N`` repeats everything N times and reports medians (a shared machine's load moves).

Run: ``python bench/bench_throughput.py`` (all demo items: 60 multiple choice, 10 generation)
     ``python bench/bench_throughput.py --mc 16 --gen 4 --gen-tokens 64 --sizes 1,2,4,8``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quantmatrix.backends.base import GenerationRequest, GenerationResult
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.backends.llamacpp_seq import common_prefix
from quantmatrix.config import load_study
from quantmatrix.models.sources import default_cache, resolve_source
from quantmatrix.tasks import multiple_choice
from quantmatrix.tasks.base import Sample
from quantmatrix.tasks.plan import plan_samples

PRESET = "src/quantmatrix/presets/demo.yaml"


def _request(s: Sample, group: int, max_tokens: int | None) -> GenerationRequest:
    key, budget = f"{s.task}|{s.item}", max_tokens or s.max_tokens
    return GenerationRequest(key, s.prompt, budget, stop_at_line_end=s.stop_at_line_end,
                             letter_count=s.letter_count, batch_group=group)  # fmt: skip


def _requests(samples: Sequence[Sample], size: int, max_tokens: int | None) -> list[Any]:
    return [_request(s, i // size, max_tokens) for i, s in enumerate(samples)]


def _top(p: Sequence[float]) -> int:
    return max(range(len(p)), key=p.__getitem__)


def _timed(backend: LlamaCppBackend, reqs: list[Any]) -> tuple[float, list[GenerationResult]]:
    started = time.perf_counter()
    results = list(backend.generate(reqs))
    return time.perf_counter() - started, results


def _paired(backend: LlamaCppBackend, reqs: list[Any], size: int) -> dict[str, Any]:
    walls = {"old": 0.0, "new": 0.0}
    out: dict[str, list[GenerationResult]] = {"old": [], "new": []}
    for k in range(0, len(reqs), size):
        group = reqs[k : k + size]
        single = [dataclasses.replace(r, batch_group=None) for r in group]
        order = [("old", single), ("new", group)]
        for name, batch in order if (k // size) % 2 == 0 else order[::-1]:
            wall, results = _timed(backend, batch)
            walls[name] += wall
            out[name] += results
    return {"walls": walls, "results": out}


def _prefix_share(backend: LlamaCppBackend, reqs: list[Any], size: int) -> tuple[int, int, int]:
    """(prompt tokens, of them in a shared prefix, distinct prefixes' tokens evaluated)."""
    total = shared = distinct = 0
    seen: set[tuple[int, ...]] = set()
    for k in range(0, len(reqs), size):
        seqs = backend._sequences(reqs[k : k + size]) or []
        prompts = [s.prompt for s in seqs]
        prefix = tuple(common_prefix(prompts)) if len(prompts) > 1 else ()
        total += sum(len(p) for p in prompts)
        shared += len(prefix) * len(prompts)
        if prefix not in seen:
            seen.add(prefix)
            distinct += len(prefix)
    return total, shared, distinct


def _agreement(old: list[GenerationResult], new: list[GenerationResult],
               samples: dict[str, Sample]) -> str:  # fmt: skip
    texts = sum(a.text == b.text for a, b in zip(old, new, strict=True))
    line = f"texts {texts}/{len(old)}"
    mc = [(a, b) for a, b in zip(old, new, strict=True) if "choices" in samples[a.key].inputs]
    if mc:
        inputs = [samples[a.key].inputs for a, _ in mc]
        preds = [
            (multiple_choice.score(a.text, i)["pred"], multiple_choice.score(b.text, i)["pred"])
            for (a, b), i in zip(mc, inputs, strict=True)
        ]
        read = sum(x == y for x, y in preds)
        probs: list[tuple[Sequence[float], Sequence[float]]] = [
            (a.letter_probs, b.letter_probs)
            for a, b in mc
            if a.letter_probs is not None and b.letter_probs is not None
        ]
        top = sum(_top(p) == _top(q) for p, q in probs)
        diff = max((abs(x - y) for p, q in probs for x, y in zip(p, q, strict=True)), default=0)
        line += f", reply letter {read}/{len(mc)}, top letter {top}/{len(probs)}"
        line += f", max |dp| {diff:.4f}"
    return line


def _sweep(backend: LlamaCppBackend, reqs: list[Any], sizes: list[int], reps: int) -> None:
    """Aggregate decode throughput per batch size on one backend (its batch size the largest),
    the sizes interleaved rep by rep, the order reversed every other rep; medians."""
    walls: dict[int, list[float]] = {size: [] for size in sizes}
    speeds: dict[int, list[float]] = {size: [] for size in sizes}
    for rep in range(reps):
        for size in sizes if rep % 2 == 0 else sizes[::-1]:
            grouped = [dataclasses.replace(r, batch_group=i // size if size > 1 else None)
                       for i, r in enumerate(reqs)]  # fmt: skip
            wall, results = _timed(backend, grouped)
            tokens = sum(r.timing.decode_tokens or 0 for r in results)
            decode = sum(r.timing.decode_s or 0.0 for r in results)
            walls[size].append(wall)
            speeds[size].append(tokens / decode)
    print(f"\nbatch size | generation wall s (median of {reps}) | decode tok/s, aggregate")
    for size in sizes:
        print(f"{size:10d} | {statistics.median(walls[size]):30.2f} | "
              f"{statistics.median(speeds[size]):.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--mc", type=int, default=None, help="first N multiple-choice items")
    parser.add_argument("--gen", type=int, default=None, help="first N generation items")
    parser.add_argument("--gen-tokens", type=int, default=None, help="override their budget")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sizes", default="", help="e.g. 1,2,4,8: a batch-size sweep")
    parser.add_argument("--reps", type=int, default=1, help="repetitions (medians)")
    args = parser.parse_args()
    study = load_study(Path(PRESET))
    source = resolve_source(study.models[0].name, study.models[0].source, default_cache())
    samples = plan_samples(study)
    mc = [s for s in samples if "choices" in s.inputs][: args.mc]
    gen = [s for s in samples if "choices" not in s.inputs][: args.gen]
    by_key = {f"{s.task}|{s.item}": s for s in samples}

    def backend_for(size: int) -> LlamaCppBackend:
        options = LlamaCppOptions(study.context_length, args.threads, chat=True, batch_size=size)
        return LlamaCppBackend(source.path, options)

    size = args.batch_size
    print(f"model {source.path.name}, batch size {size}, {len(mc)} multiple choice, "
          f"{len(gen)} generation items")  # fmt: skip
    backend = backend_for(size)
    parts = (("multiple choice", mc, None), ("generation", gen, args.gen_tokens))
    for name, items, budget in parts:
        if not items:
            continue
        reqs = _requests(items, size, budget)
        runs = [_paired(backend, reqs, size) for _ in range(args.reps)]
        run = runs[0]
        old = statistics.median(r["walls"]["old"] for r in runs)
        new = statistics.median(r["walls"]["new"] for r in runs)
        ratios = ", ".join(f"{r['walls']['old'] / r['walls']['new']:.2f}" for r in runs)
        total, shared, distinct = _prefix_share(backend, reqs, size)
        evaluated = total - shared + distinct
        print(f"\n{name}: old {old:.2f} s, new {new:.2f} s (medians of {args.reps}), "
              f"ratio {old / new:.2f}x (per rep: {ratios})")  # fmt: skip
        print(f"  prompt tokens {total}; in a shared prefix {shared} "
              f"({100 * shared / total:.1f} %); evaluated by the new path {evaluated} "
              f"({100 * evaluated / total:.1f} %)")  # fmt: skip
        print("  agreement: " + _agreement(run["results"]["old"], run["results"]["new"], by_key))
    backend.close()
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",")]
        sweeper = backend_for(max(sizes))
        _sweep(sweeper, _requests(gen, 1, args.gen_tokens), sizes, args.reps)
        sweeper.close()


if __name__ == "__main__":
    main()
