"""Benchmark: what the long-context probe costs per bucket, and what the context itself does to
KL with the text held fixed, on the demo model, in one process.

Token KL. For each level (the baseline first) and each document, the same tokens are evaluated
two ways, one right after the other so both see the same machine load:

- *long*: the probe's way, one sequence from the document's first token, window after window
  on one growing KV cache (``scoring/windows.py``): position ``p`` has ``p + 1`` tokens of
  context;
- *short*: the same tokens cut at every ``--window`` positions, each piece from an empty cache
  (the KL phase's chunks): at most ``--window`` tokens of context.

Both are compared with the baseline evaluated the same way (top-k + tail rows, as the phases
store them). Per level and bucket: seconds per document each way and their ratio (what a long
context costs over short chunks of the same tokens), and the KL each way and their ratio (the
context's own effect on the level's KL: the text is the same, only what precedes it differs;
the probe's bucket means mix that with the text's position in the document).

Many-shot. For one level, each bucket's first ``--mc`` questions asked one request at a time on
the embedded engine (the long shared prefix cached by llama-cpp-python after the first):
seconds per reply and prompt tokens per bucket.

Run: ``python bench/bench_long_context.py`` (Q8_0 vs Q4_K_M of the demo model, buckets
512/2048/4096, 2 documents) or ``--levels F16,Q2_K --buckets 512,2048,8192 --documents 3``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quantmatrix.backends.base import GenerationRequest
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.config import LongContextSpec, parse_study
from quantmatrix.data.long_documents import load_documents
from quantmatrix.engine.load import open_for_eval
from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import default_cache, resolve_source
from quantmatrix.pipeline.long_context import choose_documents
from quantmatrix.pipeline.long_document import TAIL_SAMPLES, TOP_K
from quantmatrix.scoring import divergence as dv
from quantmatrix.scoring.windows import LlamaWindows
from quantmatrix.tasks.many_shot import many_shot_samples

MODEL = "qwen2.5-coder-0.5b-instruct"


def _rows(
    model: LlamaWindows, tokens: list[int], window: int, short: bool
) -> tuple[list[Any], list[float]]:
    """Each window's rows of ``tokens`` (long: one sequence; short: each window from an empty
    cache) and the seconds each took."""
    parts, seconds = [], []
    started = time.perf_counter()
    if short:
        for s in range(0, len(tokens), window):
            parts.append(next(model.windows(tokens[s : s + window], window)))
            seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
    else:
        for rows in model.windows(tokens, window):
            parts.append(rows)
            seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
    return parts, seconds


def _kl(base: list[Any], rows: list[Any], tokens: list[int], window: int) -> np.ndarray:
    out = []
    for w, (b, r) in enumerate(zip(base, rows, strict=True)):
        s = w * window
        toks = tokens[s : s + len(r) + 1]
        stored = dv.compress_chunk(b, toks, TOP_K, False, TAIL_SAMPLES, seed=w)
        out.append(dv.compare_chunk(stored, r, toks).kl)
    return np.concatenate(out)


def token_kl(args: argparse.Namespace, paths: dict[str, Path], spec: LongContextSpec) -> None:
    levels = list(paths)
    docs, source = load_documents(None, 42)
    cap = spec.cap
    llm = open_for_eval(paths[levels[0]], cap, args.threads, False, n_batch=args.window)
    corpus = choose_documents(LlamaWindows(llm), docs, spec, source)
    llm.close()
    rows: dict[tuple[str, str, int], list[Any]] = {}
    secs: dict[tuple[str, str, int], list[float]] = {}
    for level in levels:
        llm = open_for_eval(paths[level], cap, args.threads, False, n_batch=args.window)
        model = LlamaWindows(llm)
        for d, tokens in enumerate(corpus.tokens):
            order = ("long", "short") if d % 2 == 0 else ("short", "long")
            for way in order:
                parts, seconds = _rows(model, tokens, args.window, way == "short")
                rows[(level, way, d)] = parts
                # each window's time spread over its positions (buckets end on window edges)
                per_pos = [t / len(r) for r, t in zip(parts, seconds, strict=True) for _ in r]
                secs[(level, way, d)] = per_pos
        llm.close()
    base = levels[0]
    print(f"\ntoken KL: {len(corpus.tokens)} documents ({source}), {cap} tokens each, "
          f"window {args.window}, baseline {base}")  # fmt: skip
    head = "level      bucket      long s/doc  short s/doc  long/short   KL long   KL short  ratio"
    print(head)
    for level in levels:
        kl = {way: [_kl(rows[(base, way, d)], rows[(level, way, d)], t, args.window)
                    for d, t in enumerate(corpus.tokens)] for way in ("long", "short")}  # fmt: skip
        for start, end in corpus.bounds:
            s_long = statistics.mean(sum(secs[(level, "long", d)][start:end])
                                     for d in range(len(corpus.tokens)))  # fmt: skip
            s_short = statistics.mean(sum(secs[(level, "short", d)][start:end])
                                      for d in range(len(corpus.tokens)))  # fmt: skip
            k_long = float(np.mean([k[start:end].mean() for k in kl["long"]]))
            k_short = float(np.mean([k[start:end].mean() for k in kl["short"]]))
            ratio = k_long / k_short if k_short > 0 else float("nan")
            cost = s_long / s_short
            print(f"{level:10s} {start:5d}-{end:<5d} {s_long:11.1f} {s_short:12.1f} "
                  f"{cost:10.2f} {k_long:9.5f} {k_short:9.5f} {ratio:6.3f}")  # fmt: skip
    print(
        "(seconds: engine time of the windows holding the bucket's positions; KL: mean "
        "over documents of each document's bucket mean, vs the baseline evaluated the same "
        "way)"
    )


def many_shot(args: argparse.Namespace, path: Path, spec: LongContextSpec) -> None:
    study = parse_study({
        "models": [{"name": "m", "source": str(path), "levels": ["Q8_0"]}],
        "tasks": [{"kind": "mmlu", "n": 1}],
        "context_length": spec.cap + 64,
        "long_context": {**spec.model_dump(mode="json"), "mc_items": args.mc},
    })  # fmt: skip
    samples = many_shot_samples(study)
    options = LlamaCppOptions(spec.cap + 64, args.threads, chat=True, batch_size=1)
    backend = LlamaCppBackend(path, options)
    print(f"\nmany-shot ({path.name}, one request at a time, {args.mc} per bucket)")
    print("bucket      examples  prompt tokens  s/reply (first)  s/reply (rest, prefix cached)")
    for start, end in spec.bounds():
        mine = [s for s in samples if s.inputs["bucket_end"] == end]
        times, tokens = [], []
        for s in mine:
            req = GenerationRequest(s.item, s.prompt, s.max_tokens, stop_at_line_end=True,
                                    letter_count=s.letter_count)  # fmt: skip
            started = time.perf_counter()
            result = next(iter(backend.generate([req])))
            times.append(time.perf_counter() - started)
            tokens.append(result.timing.prompt_tokens)
        rest = statistics.mean(times[1:]) if len(times) > 1 else float("nan")
        print(f"{start:5d}-{end:<5d} {mine[0].inputs['shots']:9d} {int(np.median(tokens)):14d} "
              f"{times[0]:16.1f} {rest:29.1f}")  # fmt: skip
    backend.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--model", default=MODEL, help="a packaged model's name")
    parser.add_argument("--levels", default="Q8_0,Q4_K_M", help="the first is the baseline")
    parser.add_argument("--buckets", default="512,2048,4096")
    parser.add_argument("--documents", type=int, default=2)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--mc", type=int, default=3, help="many-shot questions per bucket")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    spec = LongContextSpec(buckets=[int(b) for b in args.buckets.split(",")],
                           documents=args.documents)  # fmt: skip
    cache = default_cache()
    source = resolve_source(args.model, args.model, cache)
    paths = {}
    for level in args.levels.split(","):
        variant = build_level(source, level, cache, args.threads or 2)
        assert variant.path is not None
        paths[level] = variant.path
    token_kl(args, paths, spec)
    if args.mc:
        many_shot(args, paths[list(paths)[-1]], spec)


if __name__ == "__main__":
    main()
