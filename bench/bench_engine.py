"""Benchmark: prompt-eval and decode speed of the llama.cpp build we ship against alternatives.

Each configuration is a (build, extra buffer types on/off) pair; each run is a fresh child
process (``quantmatrix.engine.probe``'s child: low-level API, all cores, a prompt of
``--prompt-tokens`` token ids evaluated at once, then ``--decode-tokens`` single-token decodes)
on the demo model's Q8_0 and Q4_K_M files from the ladder cache. Runs are interleaved rep by
rep so every configuration sees the same machine load; medians are reported with ratios to the
shipped configuration (this venv's build, extra buffer types on).

Another build is named with ``--alt NAME=DIR``, where DIR holds a ``llama_cpp`` package
(e.g. ``pip install --no-deps --target DIR llama_cpp_python-...whl``); its children run with
DIR first on PYTHONPATH.

Run: ``python bench/bench_engine.py --model qwen05 --reps 3``
     ``python bench/bench_engine.py --alt native=/tmp/llama-native --reps 3``
"""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass

from quantmatrix.engine.build import system_info
from quantmatrix.engine.probe import ChildJob, ChildOutcome, run_child
from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import default_cache, resolve_source

MODELS = {"smollm2": "smollm2-135m-instruct", "qwen05": "qwen2.5-coder-0.5b-instruct"}


@dataclass(frozen=True)
class Config:
    name: str
    pythonpath: str | None
    extra_bufts: bool


def _env(config: Config) -> dict[str, str]:
    env = dict(os.environ)
    if config.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [config.pythonpath,
                                                          env.get("PYTHONPATH")]))  # fmt: skip
    return env


def _median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--model", default="qwen05", choices=sorted(MODELS))
    parser.add_argument("--levels", default="Q8_0,Q4_K_M")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--alt", action="append", default=[], help="NAME=DIR of another build")
    args = parser.parse_args()

    cache = default_cache()
    source = resolve_source(args.model, MODELS[args.model], cache)
    levels = [lv.strip() for lv in args.levels.split(",")]
    files = {lv: build_level(source, lv, cache, args.threads).path for lv in levels}
    configs = [Config("shipped", None, True), Config("shipped, extra buffers off", None, False)]
    for alt in args.alt:
        name, _, folder = alt.partition("=")
        configs += [Config(name, folder, True), Config(f"{name}, extra buffers off", folder, False)]

    runs: dict[tuple[str, str], list[ChildOutcome]] = {}
    for rep in range(args.reps):
        for level in levels:
            for config in configs:
                path = files[level]
                assert path is not None
                job = ChildJob(path, config.extra_bufts, args.threads, args.prompt_tokens,
                               args.decode_tokens)  # fmt: skip
                outcome = run_child(level, job, env=_env(config))
                runs.setdefault((config.name, level), []).append(outcome)
                state = "ok" if outcome.ok else f"FAILED ({outcome.signal or outcome.returncode})"
                print(f"rep {rep + 1} {level} {config.name}: {state}", flush=True)

    print(f"\nengine: {system_info()}")
    print(f"model {MODELS[args.model]}, {args.threads} threads, prompt {args.prompt_tokens} "
          f"tokens, decode {args.decode_tokens} tokens, {args.reps} reps (medians)\n")  # fmt: skip
    print(
        "| level | build | weight buffers | prompt tok/s | decode tok/s | prompt vs shipped "
        "| decode vs shipped |"
    )
    print("|---|---|---|---|---|---|---|")
    for level in levels:
        base = runs[("shipped", level)]
        base_p = _median([o.prompt_tps for o in base])
        base_d = _median([o.decode_tps for o in base])
        for config in configs:
            got = runs[(config.name, level)]
            p = _median([o.prompt_tps for o in got])
            d = _median([o.decode_tps for o in got])
            failed = sum(not o.ok for o in got)
            bufs = ", ".join(got[0].buffers) or "-"
            note = f" ({failed} of {len(got)} died)" if failed else ""
            print(f"| {level} | {config.name}{note} | {bufs} | {p or 0:.1f} | {d or 0:.1f} "
                  f"| {_ratio(p, base_p)} | {_ratio(d, base_d)} |")  # fmt: skip


if __name__ == "__main__":
    main()
