"""Benchmark: letter-probability scoring vs generation-based scoring, and the size / accuracy
trade-off of the compact baseline storage for the token-level KL.

1. Per-item wall time on the same MC items and model file, interleaved item by item so every mode
   sees the same machine load, all through the embedded backend (chat template, greedy):
   generation as published (256 tokens, no line stop) and as the demo runs it (32 tokens, stop at
   the end of the answer line), both read by the letter extractor; ``both`` (the demo's
   generation plus the letter probabilities of its first step); ``letters`` (one token, the
   argmax option letter); and, as a check, a separate forward pass (``scoring/logits.py``).
   Also: accuracy and agreement of the picked letters.
2. Baseline-row storage per 1,000 tokens (top-k + remainder for several k, float16 full rows)
   and the error of each against the exact KL (float32 logits, float64 maths) of a variant.

Run: ``python bench/bench_letterprob.py --model smollm2 --n 40 --threads 1``
     ``python bench/bench_letterprob.py --model qwen05 --n 20 --corpus-tokens 512``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from quantmatrix.backends.base import GenerationRequest
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.data.benchmarks import MCItem, load_mmlu
from quantmatrix.engine.load import open_for_eval
from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import default_cache, resolve_source
from quantmatrix.scoring import divergence as dv
from quantmatrix.scoring import logits as lg
from quantmatrix.scoring.letters import extract_letter
from quantmatrix.tasks.multiple_choice import render_prompt

MODELS = {"smollm2": "smollm2-135m-instruct", "qwen05": "qwen2.5-coder-0.5b-instruct"}


MODES = {
    # name: (max_tokens, stop at the end of the answer line, keep the letter probabilities)
    "generation_published": (256, False, False),  # the published study's budget, no line stop
    "generation": (32, True, False),  # decoding.mc_scoring = generation (demo budget)
    "both": (32, True, True),  # generation + the letters of its first step (mc_scoring = both)
    "letters": (1, False, True),  # mc_scoring = letters: one token, argmax letter
}


def _ask(backend: LlamaCppBackend, item: MCItem, mode: str) -> tuple[float, str | None, int]:
    max_tokens, line_stop, letters = MODES[mode]
    request = GenerationRequest(key=item.id, prompt=render_prompt(item), max_tokens=max_tokens,
                                stop_at_line_end=line_stop, temperature=0.0, seed=42,
                                letter_count=len(item.choices) if letters else 0)  # fmt: skip
    started = time.perf_counter()
    result = next(iter(backend.generate([request])))
    wall = time.perf_counter() - started
    if mode == "letters":
        assert result.letter_probs is not None
        letter: str | None = chr(ord("A") + int(np.argmax(result.letter_probs)))
    else:
        letter = extract_letter(result.text, item.choices).letter
    return wall, letter, result.timing.generated_tokens


def _separate_pass(llm: Any, item: MCItem) -> tuple[float, str | None, int]:
    started = time.perf_counter()
    ids = lg.letter_token_ids(llm, len(item.choices))
    tokens = lg.prompt_tokens(llm, render_prompt(item), chat=True)
    probs = lg.letter_probs(llm, tokens, ids)
    wall = time.perf_counter() - started
    return wall, chr(ord("A") + int(np.argmax(probs))), 0


def speed(path: Path, items: list[MCItem], threads: int, skip: set[str]) -> dict[str, Any]:
    """Per-item wall time of each scoring mode, interleaved item by item on one loaded model."""
    backend = LlamaCppBackend(path, LlamaCppOptions(2048, threads, chat=True))
    llm = open_for_eval(path, 2048, threads, logits_all=False)
    modes = [m for m in MODES if m not in skip]

    def run(mode: str, item: MCItem) -> tuple[float, str | None, int]:
        return _separate_pass(llm, item) if mode == "separate_pass" else _ask(backend, item, mode)

    names = [*modes, "separate_pass"]
    for mode in names:
        run(mode, items[0])  # warm-up
    walls: dict[str, list[float]] = {m: [] for m in names}
    letters: dict[str, list[str | None]] = {m: [] for m in names}
    tokens: dict[str, list[int]] = {m: [] for m in names}
    for item in items:
        for mode in names:
            wall, letter, n_gen = run(mode, item)
            walls[mode].append(wall)
            letters[mode].append(letter)
            tokens[mode].append(n_gen)
    backend.close()
    llm.close()
    gold = [item.gold_letter for item in items]
    per_mode = {
        m: {
            "s_per_item_mean": statistics.mean(walls[m]),
            "s_per_item_median": statistics.median(walls[m]),
            "generated_tokens_mean": statistics.mean(tokens[m]),
            "accuracy": statistics.mean(a == g for a, g in zip(letters[m], gold, strict=True)),
            "same_letter_as_separate_pass": statistics.mean(
                a == b for a, b in zip(letters[m], letters["separate_pass"], strict=True)
            ),
        }
        for m in names
    }

    def ratio(a: str, b: str) -> float | None:
        if a not in walls or b not in walls:
            return None
        return statistics.mean(walls[a]) / statistics.mean(walls[b])

    return {
        "items": len(items),
        "modes": per_mode,
        "speedup_letters_vs_generation_published": ratio("generation_published", "letters"),
        "speedup_letters_vs_generation": ratio("generation", "letters"),
        "cost_of_both_vs_generation": ratio("both", "generation"),
        "letters_mode_vs_separate_pass": ratio("letters", "separate_pass"),
    }


def _corpus(llm: Any, items: list[MCItem], max_tokens: int, chunk: int) -> list[list[int]]:
    return lg.corpus_chunks(llm, lg.corpus_text(items), max_tokens, chunk)


def storage(
    base: Path, variant: Path, items: list[MCItem], threads: int, max_tokens: int, chunk: int,
    layouts: list[tuple[int, int]],
) -> dict[str, Any]:  # fmt: skip
    b_llm = open_for_eval(base, chunk, threads, logits_all=True)
    v_llm = open_for_eval(variant, chunk, threads, logits_all=True)
    chunks = _corpus(b_llm, items, max_tokens, chunk)
    exact, approx, f16 = [], {km: [] for km in layouts}, []  # type: ignore[var-annotated]
    n_vocab = b_llm.n_vocab()
    for tokens in chunks:
        lp = dv.log_softmax(lg.token_logits(b_llm, tokens))
        lq = dv.log_softmax(lg.token_logits(v_llm, tokens))
        exact.append(dv.kl_logprobs(lp, lq))
        for k, m in layouts:
            top = dv.topk_compress(lp, k, m, np.random.default_rng(len(exact)))
            approx[(k, m)].append(dv.kl_topk(top, lq))
        f16.append(dv.kl_logprobs(dv.from_f16_rows(dv.f16_rows(lp)), lq))
    b_llm.close()
    v_llm.close()
    ex = np.concatenate(exact)

    def err(values: list[np.ndarray[Any, Any]], per_token_bytes: float) -> dict[str, Any]:
        x = np.concatenate(values)
        return {
            "bytes_per_1000_tokens": per_token_bytes * 1000,
            "mean_kld": float(x.mean()),
            "mean_rel_error": float(x.mean() / ex.mean() - 1),
            "p99_rel_error": float(np.percentile(x, 99) / np.percentile(ex, 99) - 1),
            "token_abs_error_max": float(np.max(np.abs(x - ex))),
            "token_rel_error_sd": float(np.std((x - ex) / np.maximum(ex, 1e-12))),
        }

    # per token: k (id, log-prob) pairs, m sampled pairs, the rest mass, the target log-prob
    out = {f"top{k}+tail{m}": err(approx[(k, m)], (k + m) * 8 + 4 + 4) for k, m in layouts}
    out["f16_full"] = err(f16, n_vocab * 2 + 4)
    out["float32_logits_full (exact)"] = err(exact, n_vocab * 4)
    return {"tokens": int(ex.size), "vocab": n_vocab, "exact_mean_kld": float(ex.mean()),
            "exact_p99_kld": float(np.percentile(ex, 99)), "storage": out}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2", choices=sorted(MODELS))
    ap.add_argument("--level", default="F16", help="the level timed (and the KL baseline)")
    ap.add_argument("--variant", default="Q4_K_M", help="the level compared for the KL")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus-tokens", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--layouts", default="8+0,32+0,128+0,8+24,32+32,64+64",
                    help="top-k+tail-samples layouts of the compact storage")  # fmt: skip
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-modes", default="", help="comma-separated speed modes to leave out")
    ap.add_argument("--skip-storage", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    source = resolve_source(args.model, MODELS[args.model])
    cache = default_cache()
    base = build_level(source, args.level, cache, args.threads).path
    variant = build_level(source, args.variant, cache, args.threads).path
    assert base is not None and variant is not None
    items = load_mmlu(None, args.n)
    result: dict[str, Any] = {"model": args.model, "level": args.level, "threads": args.threads}
    if not args.skip_speed:
        skip = set(filter(None, args.skip_modes.split(",")))
        result["speed"] = speed(base, items, args.threads, skip)
        print(json.dumps(result["speed"], indent=1), flush=True)
    layouts = [(int(a), int(b)) for a, b in (x.split("+") for x in args.layouts.split(","))]
    if not args.skip_storage:
        sizes = storage(base, variant, items, args.threads, args.corpus_tokens, args.chunk, layouts)
        result["kl_storage"] = {"variant": args.variant, **sizes}
        print(json.dumps(result["kl_storage"], indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
