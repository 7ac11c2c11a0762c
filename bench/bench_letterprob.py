"""Benchmark: letter-probability scoring vs generation-based scoring, and the size / accuracy
trade-off of the compact baseline storage for the token-level KL.

1. Per-item wall time on the same MC items and model file, interleaved item by item so both see
   the same machine load: the embedded backend (``LlamaCppBackend``, chat template, greedy,
   ``max_tokens=32, stop_at_line_end=True``) + the letter extractor, vs one forward pass and the
   option-letter probabilities. Also: how often the two pick the same letter.
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
from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import default_cache, resolve_source
from quantmatrix.scoring import divergence as dv
from quantmatrix.scoring import logits as lg
from quantmatrix.scoring.letters import extract_letter
from quantmatrix.tasks.multiple_choice import render_prompt

MODELS = {"smollm2": "smollm2-135m-instruct", "qwen05": "qwen2.5-coder-0.5b-instruct"}


def _llama(path: Path, threads: int, logits_all: bool, n_ctx: int) -> Any:
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=min(512, n_ctx),
                           n_threads=threads, n_threads_batch=threads, logits_all=logits_all,
                           verbose=False)  # fmt: skip


def _generate(backend: LlamaCppBackend, item: MCItem) -> tuple[float, str | None, int]:
    request = GenerationRequest(key=item.id, prompt=render_prompt(item), max_tokens=32,
                                stop_at_line_end=True, temperature=0.0, seed=42)  # fmt: skip
    started = time.perf_counter()
    result = next(iter(backend.generate([request])))
    wall = time.perf_counter() - started
    return wall, extract_letter(result.text, item.choices).letter, result.timing.generated_tokens


def _letters(llm: Any, item: MCItem) -> tuple[float, str, int]:
    started = time.perf_counter()
    ids = lg.letter_token_ids(llm, len(item.choices))
    tokens = lg.prompt_tokens(llm, render_prompt(item), chat=True)
    probs = lg.letter_probs(llm, tokens, ids)
    wall = time.perf_counter() - started
    return wall, chr(ord("A") + int(np.argmax(probs))), len(tokens)


def speed(path: Path, items: list[MCItem], threads: int) -> dict[str, Any]:
    backend = LlamaCppBackend(path, LlamaCppOptions(2048, threads, chat=True))
    llm = _llama(path, threads, logits_all=False, n_ctx=2048)
    _generate(backend, items[0]), _letters(llm, items[0])  # warm-up
    gen, let, same, decoded, prompt_len, gen_ok, let_ok = [], [], 0, [], [], 0, 0
    for item in items:
        g_s, g_letter, n_gen = _generate(backend, item)
        l_s, l_letter, n_prompt = _letters(llm, item)
        gen.append(g_s)
        let.append(l_s)
        decoded.append(n_gen)
        prompt_len.append(n_prompt)
        same += g_letter == l_letter
        gen_ok += g_letter == item.gold_letter
        let_ok += l_letter == item.gold_letter
    backend.close()
    llm.close()
    n = len(items)
    return {
        "items": n,
        "prompt_tokens_mean": statistics.mean(prompt_len),
        "generated_tokens_mean": statistics.mean(decoded),
        "generation_s_per_item": {"mean": statistics.mean(gen), "median": statistics.median(gen)},
        "letterprob_s_per_item": {"mean": statistics.mean(let), "median": statistics.median(let)},
        "speedup_mean": statistics.mean(gen) / statistics.mean(let),
        "speedup_median": statistics.median(gen) / statistics.median(let),
        "same_letter": same / n,
        "accuracy_generation": gen_ok / n,
        "accuracy_letterprob_argmax": let_ok / n,
    }


def _corpus(llm: Any, items: list[MCItem], max_tokens: int, chunk: int) -> list[list[int]]:
    return lg.corpus_chunks(llm, lg.corpus_text(items), max_tokens, chunk)


def storage(
    base: Path, variant: Path, items: list[MCItem], threads: int, max_tokens: int, chunk: int,
    layouts: list[tuple[int, int]],
) -> dict[str, Any]:  # fmt: skip
    b_llm = _llama(base, threads, logits_all=True, n_ctx=chunk)
    v_llm = _llama(variant, threads, logits_all=True, n_ctx=chunk)
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
        result["speed"] = speed(base, items, args.threads)
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
