"""Benchmark: the same 100 MC items in process (llama.cpp embedded) and through a local server.

Items: MMLU n=60 + ARC-Challenge n=40, planned with ``plan_samples`` exactly as a study plans
them (greedy, stop at the first line with content, 32 new tokens at most). The model is the
packaged SmolLM2-135M-Instruct (Q4_1), one thread everywhere.

Passes (each after a short warm-up), interleaved in blocks of items so that load from other
processes on a shared machine falls on all of them alike:
1. embedded ``LlamaCppBackend``: client wall time and llama.cpp's native prompt-eval + decode;
2. ``python -m llama_cpp.server`` through ``OpenAIBackend``, one request in flight;
3. the same server, two requests in flight (the server runs one generation at a time, so
   this only overlaps one request's HTTP round trip with the other's generation).

What the overhead figures compare, honestly: llama-cpp-python's server sends no ``timings``, so
there is no engine-native time for its requests. The bench reports two stand-ins for it:
(a) the server's own handling time per request (its ``openai-processing-ms`` header, whole ms,
measured around the route handler: request parsing, generation, building the reply, not the
network or the client) -- the overhead over it is the HTTP + client cost; and (b) the native
time the embedded engine needed for the same item -- the overhead over it is the whole
server-stack cost. Note for (b): the server keeps its KV cache between requests and reuses the
common prompt prefix, while the embedded backend starts every sample from an empty cache.

Run: ``python bench/bench_server_overhead.py`` (about 3-6 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from quantmatrix.backends.base import Backend, GenerationRequest, GenerationResult
from quantmatrix.backends.http import ServerOptions, http_overhead_pct
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.backends.openai_compat import OpenAIBackend
from quantmatrix.config import parse_study
from quantmatrix.models.sources import resolve_source
from quantmatrix.tasks.plan import plan_samples

MODEL = "smollm2-135m-instruct"


@dataclass
class Pass:
    name: str
    seconds: float = 0.0
    results: list[GenerationResult] = field(default_factory=list)

    @property
    def items_per_s(self) -> float:
        return len(self.results) / self.seconds

    @property
    def wall(self) -> float:
        return sum(r.timing.wall_s for r in self.results)


def plan_requests(n_mmlu: int, n_arc: int) -> list[GenerationRequest]:
    study = parse_study(
        {
            "name": "bench-server-overhead",
            "models": [{"name": "smollm2", "source": MODEL, "levels": ["Q4_1"]}],
            "tasks": [
                {"kind": "mmlu", "per_subject": None, "n": n_mmlu},
                {"kind": "arc_challenge", "n": n_arc},
            ],
        }
    )
    dec = study.decoding
    return [
        GenerationRequest(
            key=f"{s.task}|{s.item}",
            prompt=s.prompt,
            max_tokens=s.max_tokens,
            stop_at_line_end=s.stop_at_line_end,
            temperature=dec.temperature,
            seed=dec.seed,
        )
        for s in plan_samples(study)
    ]


def warm_up(backend: Backend) -> None:
    reqs = [GenerationRequest(f"warm{i}", "Say hello.", max_tokens=8) for i in range(2)]
    for _ in backend.generate(reqs):
        pass


def run_interleaved(
    backends: dict[str, Backend], reqs: list[GenerationRequest], blocks: int
) -> list[Pass]:
    """Every backend answers block 1, then every backend block 2, ...: load drift on a shared
    machine then hits all passes alike instead of whichever pass ran during a busy minute."""
    passes = {name: Pass(name) for name in backends}
    for backend in backends.values():
        warm_up(backend)
    size = -(-len(reqs) // blocks)
    for start in range(0, len(reqs), size):
        chunk = reqs[start : start + size]
        for name, backend in backends.items():
            started = time.perf_counter()
            passes[name].results += backend.generate(chunk)
            passes[name].seconds += time.perf_counter() - started
        done = start + len(chunk)
        print(f"  {done}/{len(reqs)} items through every pass", file=sys.stderr)
    return list(passes.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server(model: Path, threads: int, n_ctx: int) -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host"]
    cmd += ["127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)]
    cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/v1/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit("llama_cpp.server did not come up")
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


def report(embedded: Pass, seq: Pass, par: Pass) -> None:
    native = {r.key: r.timing.native_s or 0.0 for r in embedded.results}
    server_s = {r.key: r.timing.server_s for r in seq.results if r.timing.server_s is not None}
    print(f"items: {len(embedded.results)} (MMLU + ARC-Challenge), model {MODEL}, 1 thread")
    print("\nthroughput (items/s, wall clock of each pass)")
    for p in (embedded, seq, par):
        print(f"  {p.name:<34} {p.items_per_s:6.2f}")
    print()
    for p in (seq, par):
        same = sum(a.text == b.text for a, b in zip(embedded.results, p.results, strict=True))
        print(f"identical answers, embedded vs {p.name}: {same}/{len(p.results)}")
    print("\noverhead, summed over all items: 100*(wall-reference)/reference")
    emb_native = sum(native.values())
    print(f"  embedded wall over its native time            {_pct(embedded.wall, emb_native)}")
    srv = sum(server_s.values())
    print(f"  server client wall over server handling time  {_pct(seq.wall, srv)}")
    print(f"  server client wall over embedded native time  {_pct(seq.wall, emb_native)}")
    per_item = [
        http_overhead_pct(r.timing.wall_s, server_s[r.key])
        for r in seq.results
        if server_s.get(r.key)
    ]
    if per_item:
        print(f"  per item, over handling time: median {statistics.median(per_item):.1f} %")
    mean_ms = 1000 * (seq.wall - srv) / len(seq.results)
    print(f"  mean client-side cost per request: {mean_ms:.1f} ms")
    print(
        "\nreferences: 'native' = llama.cpp's own prompt-eval + decode time, in process;"
        "\n'server handling time' = llama_cpp.server's openai-processing-ms header (whole ms);"
        "\nllama_cpp.server reports no native timings; it reuses the cached prompt prefix"
        "\nbetween requests, the embedded backend starts each sample from an empty cache."
    )


def _pct(wall: float, reference: float) -> str:
    return f"{http_overhead_pct(wall, reference):6.1f} %  ({wall:.1f} s vs {reference:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmlu", type=int, default=60)
    parser.add_argument("--arc", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--blocks", type=int, default=5, help="interleaving blocks")
    args = parser.parse_args()
    reqs = plan_requests(args.mmlu, args.arc)
    model = resolve_source(MODEL, MODEL).path
    embedded = LlamaCppBackend(model, LlamaCppOptions(args.n_ctx, args.threads))
    with llama_server(model, args.threads, args.n_ctx) as url:
        seq_options = ServerOptions(context_length=args.n_ctx, logprobs=False, timeout_s=300)
        par_options = dataclasses.replace(seq_options, in_flight=2)
        seq_backend = OpenAIBackend(url, MODEL, seq_options)
        backends: dict[str, Backend] = {
            "embedded (llama-cpp-python)": embedded,
            "llama_cpp.server, 1 in flight": seq_backend,
            "llama_cpp.server, 2 in flight": OpenAIBackend(url, MODEL, par_options),
        }
        emb, seq, par = run_interleaved(backends, reqs, args.blocks)
    embedded.close()
    report(emb, seq, par)


if __name__ == "__main__":
    main()
