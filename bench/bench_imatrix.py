"""Benchmark: what an importance matrix costs and buys on a real model.

Times, on one model: its F16 file (from a quantized source: the F16 reconstruction), then
``llama-imatrix`` on it over the calibration text (default: the packaged one), then each given
level built without (where llama.cpp allows) and with that matrix; prints each file's measured
bits per weight. Needs
llama.cpp's tools (``make tools``). Files go to a fresh cache folder unless --cache is given.

Run: ``python bench/bench_imatrix.py --model qwen2.5-coder-1.5b-instruct --levels Q4_K_M,IQ2_XS``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from quantmatrix.levels import check_level
from quantmatrix.models.imatrix import ImatrixPlan, calibration, ensure_imatrix
from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import resolve_source

T = TypeVar("T")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="any source spelling")
    ap.add_argument("--levels", default="IQ2_XS", help="levels built with the matrix")
    ap.add_argument("--text", type=Path, help="calibration text (default: the packaged one)")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path)
    args = ap.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-imatrix-"))
    times: dict[str, float] = {}

    def timed(label: str, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = fn()
        times[label] = round(time.perf_counter() - started, 1)
        return result

    source = timed("resolve source", lambda: resolve_source("m", args.model, cache))
    top = timed("float file (F16)", lambda: build_level(source, "F16", cache, args.threads))
    plan = ImatrixPlan(calibration(args.text), context=args.ctx, threads=args.threads)
    assert top.path is not None
    path = top.path
    timed("llama-imatrix", lambda: ensure_imatrix(path, source.sha256, plan, cache))
    bits: dict[str, float | None] = {}
    for level in args.levels.split(","):
        for name, use in ((level, None), (f"{level}-imat", plan)):
            if name == level and check_level(level).needs_imatrix:
                continue  # llama.cpp refuses it without a matrix
            variant = timed(name, lambda n=name, u=use: build_level(  # type: ignore[misc]
                source, n, cache, args.threads, imatrix=u))  # fmt: skip
            bits[name] = variant.info.bits_per_weight if variant.info else None
    report = {"model": args.model, "cache": str(cache), "calibration": plan.calibration.label,
              "seconds": times, "bits_per_weight": bits}  # fmt: skip
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
