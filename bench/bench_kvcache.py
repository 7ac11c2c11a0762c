"""Benchmark: the KV-cache types on the demo model, side by side in one process.

For each KV type (f16, f16 with flash attention as a control, q8_0, q4_0; the quantized types
need flash attention, so the control separates its effect from the cache's):

- memory: the memory phase's child at each context of ``--contexts`` (``fill: batch`` by
  default; ``--full N`` also fills a whole context of N tokens for f16 and q8_0, the size of
  the batch fill's under-count);
- speed: the demo's first multiple-choice items asked one request at a time, every KV type in
  turn per item (the same load for each), engine-native prompt and decode tok/s; and one long
  prompt of ``--long`` tokens evaluated per type (prompt tok/s at a fuller context);
- agreement with f16: identical replies, the same letter read, the same most probable letter,
  the largest letter-probability difference, accuracy; and token-level KL(f16 || type) with
  the top-token agreement over ``--kl-tokens`` tokens of the items' own text (full softmax,
  chunks of 256 from an empty cache, as the KL phase).

Ratios are against f16 in the same run. Run with ``nice``; a shared machine's load moves
absolute figures, less so ratios taken item by item.

Run: ``python bench/bench_kvcache.py`` (Q4_K_M, the shipped file; 24 items)
     ``python bench/bench_kvcache.py --level Q8_0 --mc 36 --contexts 2048,8192 --full 4096``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from quantmatrix.backends.base import GenerationRequest, GenerationResult
from quantmatrix.backends.context_memory import ChildJob, ContextMemory, measure
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.config import load_study
from quantmatrix.engine.load import EngineSettings
from quantmatrix.engine.settings import machine_settings
from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import default_cache, resolve_source
from quantmatrix.tasks import multiple_choice
from quantmatrix.tasks.plan import plan_samples

PRESET = "src/quantmatrix/presets/demo.yaml"
MIB = 2**20


@dataclass(frozen=True)
class Arm:
    name: str
    engine: EngineSettings
    flash_attn: bool  # forced on for the f16 control


@dataclass
class Tally:
    prompt_tokens: int = 0
    prompt_s: float = 0.0
    decode_tokens: int = 0
    decode_s: float = 0.0
    results: list[GenerationResult] = field(default_factory=list)


def arms(base: EngineSettings) -> list[Arm]:
    out = [Arm("f16", base, False), Arm("f16+fa", base, True)]
    for kv in ("q8_0", "q4_0"):
        engine = EngineSettings(base.gpu_layers, base.extra_bufts, base.reason, kv)
        out.append(Arm(kv, engine, True))
    return out


def open_arm(path: Path, arm: Arm, threads: int) -> LlamaCppBackend:
    backend = LlamaCppBackend(path, LlamaCppOptions(2048, threads, chat=True, engine=arm.engine))
    if arm.flash_attn and arm.engine.kv_cache == "f16":  # the control: reopen with FA
        backend.llm.close()
        from quantmatrix.engine.load import open_llama

        backend.llm = open_llama(path, arm.engine, n_ctx=2048, n_threads=threads,
                                 n_threads_batch=threads, flash_attn=True)  # fmt: skip
    return backend


def speeds(
    backends: dict[str, LlamaCppBackend], reqs: Sequence[GenerationRequest]
) -> dict[str, Tally]:
    tallies = {name: Tally() for name in backends}
    for i, req in enumerate(reqs):
        order = list(backends) if i % 2 == 0 else list(backends)[::-1]
        for name in order:
            (result,) = list(backends[name].generate([req]))
            t = tallies[name]
            t.prompt_tokens += result.timing.prompt_tokens
            t.prompt_s += result.timing.prompt_eval_s or 0.0
            t.decode_tokens += result.timing.decode_tokens or 0
            t.decode_s += result.timing.decode_s or 0.0
            t.results.append(result)
    return tallies


def long_prompt(backend: LlamaCppBackend, n: int) -> float:
    """Prompt tok/s of one evaluation of ``n`` token ids from an empty cache."""
    llm = backend.llm
    llm.reset()  # eval then drops every cell from position 0 on
    vocab = int(llm.n_vocab())
    tokens = [(7919 * i + 13) % vocab for i in range(n)]
    started = time.perf_counter()
    llm.eval(tokens)
    return n / (time.perf_counter() - started)


def token_kl(path: Path, threads: int, n_tokens: int, text: str) -> None:
    """KL(f16 || type) per token and the top-token agreement, every arm on the same chunks."""
    import numpy as np

    from quantmatrix.engine.load import open_llama
    from quantmatrix.scoring import logits as lg

    def logprobs(arm: Arm) -> list[np.ndarray]:
        extra = {"flash_attn": True} if arm.name == "f16+fa" else {}
        llm = open_llama(path, arm.engine, n_ctx=256, n_batch=256, n_threads=threads,
                         n_threads_batch=threads, logits_all=True, **extra)  # fmt: skip
        chunks = lg.corpus_chunks(llm, text, n_tokens, 256)
        out = []
        for chunk in chunks:
            x = lg.token_logits(llm, chunk).astype(np.float64)
            x -= x.max(axis=1, keepdims=True)
            out.append(x - np.log(np.exp(x).sum(axis=1, keepdims=True)))
        llm.close()
        return out

    every = arms(machine_settings(0))
    ref = logprobs(every[0])
    print(
        f"\ntoken KL vs f16 ({sum(len(c) for c in ref)} positions) | KL mean | KL p99 | "
        "same top token"
    )
    for arm in every[1:]:
        got = logprobs(arm)
        pairs = list(zip(ref, got, strict=True))
        kl = np.concatenate([(np.exp(p) * (p - q)).sum(axis=1) for p, q in pairs])
        same = np.concatenate([p.argmax(axis=1) == q.argmax(axis=1) for p, q in pairs])
        print(f"{arm.name:6} | {kl.mean():.4g} | {np.percentile(kl, 99):.4g} | "
              f"{same.mean():.3f}")  # fmt: skip


def _top(p: Sequence[float]) -> int:
    return max(range(len(p)), key=p.__getitem__)


def agreement(base: Tally, other: Tally, inputs: Sequence[dict[str, object]]) -> str:
    pairs = list(zip(base.results, other.results, strict=True))
    same_text = sum(a.text == b.text for a, b in pairs)
    read = [(multiple_choice.score(a.text, i), multiple_choice.score(b.text, i))
            for (a, b), i in zip(pairs, inputs, strict=True)]  # fmt: skip
    same_read = sum(x["pred"] == y["pred"] for x, y in read)
    acc = sum(bool(y["correct"]) for _, y in read)
    probs = [(a.letter_probs, b.letter_probs) for a, b in pairs
             if a.letter_probs is not None and b.letter_probs is not None]  # fmt: skip
    top = sum(_top(p) == _top(q) for p, q in probs)
    diff = max((abs(x - y) for p, q in probs for x, y in zip(p, q, strict=True)), default=0.0)
    n = len(pairs)
    return (f"replies identical {same_text}/{n}, letter read same {same_read}/{n}, top letter "
            f"same {top}/{len(probs)}, max |dp| {diff:.4f}, accuracy {acc}/{n}")  # fmt: skip


def memory_table(path: Path, base: EngineSettings, contexts: list[int], full: int | None,
                 threads: int) -> None:  # fmt: skip
    rows: dict[tuple[str, int, str], ContextMemory] = {}
    for n_ctx in contexts:
        for arm in arms(base):
            if arm.name == "f16+fa":
                continue  # the memory child sets flash attention by the KV type only
            job = ChildJob(path, n_ctx, arm.engine, threads, "batch")
            rows[(arm.name, n_ctx, "batch")] = measure(job)
    if full:
        for arm in arms(base)[::2]:  # f16 and q8_0
            job = ChildJob(path, full, arm.engine, threads, "full")
            rows[(arm.name, full, "full")] = measure(job)
    print(
        "\nmemory | context | fill | peak MiB | peak RSS MiB | model | KV | compute | "
        "peak / f16 | fill s"
    )
    for (name, n_ctx, fill), m in rows.items():
        ref = rows.get(("f16", n_ctx, fill))
        ratio = m.peak_bytes / ref.peak_bytes if ref else float("nan")
        print(f"{name:6} | {n_ctx:7d} | {fill:5} | {m.peak_bytes / MIB:8.1f} | "
              f"{m.rss_peak_bytes / MIB:12.1f} | {m.model_bytes / MIB:5.1f} | "
              f"{m.kv_bytes / MIB:5.1f} | {m.compute_bytes / MIB:7.1f} | {ratio:10.3f} | "
              f"{m.fill_s:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--level", default="Q4_K_M", help="a demo ladder level")
    parser.add_argument("--mc", type=int, default=24, help="first N multiple-choice items")
    parser.add_argument("--contexts", default="2048,8192")
    parser.add_argument("--full", type=int, default=None, help="also fill N tokens whole")
    parser.add_argument("--long", type=int, default=1536, help="long prompt tokens (0: skip)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--kl-tokens", type=int, default=512, help="0: skip token KL")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    threads = args.threads or os.cpu_count() or 1
    study = load_study(Path(PRESET))
    spec, cache = study.models[0], default_cache()
    source = resolve_source(spec.name, spec.source, cache)
    path = build_level(source, args.level, cache, threads).path
    assert path is not None
    base = machine_settings(0, cache)
    print(f"model {spec.name} {args.level} ({path.name}), {threads} threads, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if not args.skip_memory:
        contexts = [int(x) for x in args.contexts.split(",") if x]
        memory_table(path, base, contexts, args.full, threads)
    mc = [s for s in plan_samples(study) if "choices" in s.inputs][: args.mc]
    reqs = [GenerationRequest(f"{s.task}|{s.item}", s.prompt, s.max_tokens,
                              stop_at_line_end=s.stop_at_line_end,
                              letter_count=s.letter_count) for s in mc]  # fmt: skip
    backends = {arm.name: open_arm(path, arm, threads) for arm in arms(base)}
    tallies = speeds(backends, reqs)
    ref = tallies["f16"]
    print(
        f"\nspeed ({len(reqs)} items, single stream) | prompt tok/s | decode tok/s | "
        f"long prompt tok/s ({args.long}) | ratios vs f16"
    )
    longs = {name: long_prompt(b, args.long) if args.long else 0.0 for name, b in backends.items()}
    long_ref = longs["f16"]
    for name, t in tallies.items():
        prompt, decode, long = (
            t.prompt_tokens / t.prompt_s,
            t.decode_tokens / t.decode_s,
            longs[name],
        )
        print(f"{name:6} | {prompt:7.1f} | {decode:6.1f} | {long:7.1f} | "
              f"{prompt / (ref.prompt_tokens / ref.prompt_s):.3f} / "
              f"{decode / (ref.decode_tokens / ref.decode_s):.3f} / "
              f"{long / long_ref if long_ref else float('nan'):.3f}")  # fmt: skip
    inputs = [s.inputs for s in mc]
    print("\nagreement with f16 KV (greedy replies and first-step letter probabilities)")
    for name, t in tallies.items():
        print(f"{name:6} | {agreement(ref, t, inputs)}")
    for b in backends.values():
        b.close()
    if args.kl_tokens:
        from quantmatrix.scoring import logits as lg
        from quantmatrix.tasks.plan import mc_items

        token_kl(path, threads, args.kl_tokens, lg.corpus_text(mc_items(study)))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
