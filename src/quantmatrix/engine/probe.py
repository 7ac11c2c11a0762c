"""The engine probe: does this llama.cpp build survive a quantized model on this CPU?

llama.cpp picks CPU kernels from CPUID at run time. On some virtual machines a path the CPU
advertises is not fully usable (AMX: SIGILL at ``tileloadd`` in ``ggml_backend_amx_mul_mat``
on the first quantized matrix multiply), and the process dies with a signal that no Python
code can catch. So, once per build and machine, a child process loads the tiny model at Q8_0
and Q4_K_M with all cores and evaluates a prompt of ``PROMPT_TOKENS`` tokens; if the child dies
by a signal, the probe tries again with llama.cpp's extra buffer types (AMX and CPU repack) off,
and the engine runs that way, which the manifest records. The verdict is cached in the model
cache, keyed by the build and the CPU.

``python -m quantmatrix.engine.probe`` runs it and prints the verdict.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quantmatrix.runlog import write_json_atomic

PROBE_LEVELS = ("Q8_0", "Q4_K_M")
PROMPT_TOKENS = 96
DECODE_TOKENS = 8
CHILD_TIMEOUT_S = 300
FAULT_ENV = "QUANTMATRIX_PROBE_FAULT"  # tests: the child raises this signal (e.g. SIGILL)
_BUFFER_LINE = re.compile(r"(\S+) model buffer size")


class EngineError(RuntimeError):
    """llama.cpp cannot run on this machine; the message says what died and what to do."""


@dataclass(frozen=True)
class ChildOutcome:
    """One child's run of one model file."""

    level: str
    extra_bufts: bool
    returncode: int
    signal: str | None  # "SIGILL" when the child died by a signal
    prompt_tps: float | None
    decode_tps: float | None
    stderr_tail: str
    buffers: tuple[str, ...] = ()  # weight buffer types llama.cpp reported (CPU, CPU_REPACK, ...)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.prompt_tps is not None


def _signal_name(returncode: int) -> str | None:
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


@dataclass(frozen=True)
class ChildJob:
    """What one child evaluates: ``prompt_tokens`` at once, then ``decode_tokens`` one by one."""

    model: Path
    extra_bufts: bool
    threads: int
    prompt_tokens: int = PROMPT_TOKENS
    decode_tokens: int = DECODE_TOKENS
    fault: str | None = None  # a signal name the child raises before evaluating (tests)

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "quantmatrix.engine.probe", "--child", str(self.model),
                "--threads", str(self.threads), "--extra-bufts", "1" if self.extra_bufts else "0",
                "--prompt-tokens", str(self.prompt_tokens),
                "--decode-tokens", str(self.decode_tokens)]  # fmt: skip


def run_child(level: str, job: ChildJob, env: dict[str, str] | None = None) -> ChildOutcome:
    """Evaluate ``job.model`` in a fresh process; a crash there is a result here, not a crash."""
    child_env = dict(os.environ if env is None else env)
    child_env.pop(FAULT_ENV, None)
    if job.fault:
        child_env[FAULT_ENV] = job.fault
    try:
        done = subprocess.run(
            job.argv(), capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=child_env
        )
    except subprocess.TimeoutExpired:
        return ChildOutcome(level, job.extra_bufts, -9, "timeout", None, None, "")
    speeds: dict[str, float] = {}
    if done.returncode == 0 and done.stdout.strip():
        speeds = json.loads(done.stdout.strip().splitlines()[-1])
    return ChildOutcome(
        level=level,
        extra_bufts=job.extra_bufts,
        returncode=done.returncode,
        signal=_signal_name(done.returncode),
        prompt_tps=speeds.get("prompt_tps"),
        decode_tps=speeds.get("decode_tps"),
        stderr_tail=done.stderr[-400:],
        buffers=tuple(dict.fromkeys(_BUFFER_LINE.findall(done.stderr))),
    )


def _child_main(model: Path, threads: int, extra_bufts: bool, n_prompt: int, n_decode: int) -> None:
    """Load ``model`` with the low-level API, decode a prompt and single tokens, print speeds.

    llama.cpp's load log goes to stderr (the parent reads the buffer types from it)."""
    import llama_cpp as lib

    lib.llama_backend_init()
    mparams = lib.llama_model_default_params()
    mparams.use_extra_bufts = extra_bufts
    loaded = lib.llama_model_load_from_file(str(model).encode(), mparams)
    if not loaded:
        raise SystemExit(f"could not load {model}")
    cparams = lib.llama_context_default_params()
    cparams.n_ctx = n_prompt + n_decode + 16
    cparams.n_batch = cparams.n_ubatch = max(n_prompt, 1)
    cparams.n_threads = cparams.n_threads_batch = threads
    ctx = lib.llama_init_from_model(loaded, cparams)
    vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(loaded))
    ids = [(7919 * i + 13) % vocab for i in range(n_prompt + n_decode)]
    fault = os.environ.get(FAULT_ENV)
    if fault and extra_bufts:  # what an AMX fault on a VM looks like, for the tests
        signal.raise_signal(signal.Signals[fault])
    prompt = (lib.llama_token * n_prompt)(*ids[:n_prompt])
    started = time.perf_counter()
    if lib.llama_decode(ctx, lib.llama_batch_get_one(prompt, n_prompt)) != 0:
        raise SystemExit("llama_decode failed on the prompt")
    prompt_s = time.perf_counter() - started
    started = time.perf_counter()
    for token in ids[n_prompt:]:
        one = (lib.llama_token * 1)(token)
        if lib.llama_decode(ctx, lib.llama_batch_get_one(one, 1)) != 0:
            raise SystemExit("llama_decode failed on a single token")
    decode_s = time.perf_counter() - started
    row = lib.llama_get_logits_ith(ctx, -1)
    finite = all(abs(float(row[j])) < 1e30 for j in range(min(vocab, 64)))
    lib.llama_free(ctx)
    lib.llama_model_free(loaded)
    if not finite:
        raise SystemExit("the logits are not finite")
    speeds = {"prompt_tps": n_prompt / prompt_s, "decode_tps": n_decode / max(decode_s, 1e-9)}
    print(json.dumps(speeds))


def probe_models(cache: Path, threads: int) -> dict[str, Path]:
    """The tiny model at each probe level, built once into ``cache/engine-probe``."""
    from quantmatrix.engine.tiny_model import write_tiny_llama
    from quantmatrix.models.ladder import quantize_file

    folder = cache / "engine-probe"
    f16 = folder / "tiny-f16.gguf"
    if not f16.exists():
        tmp = write_tiny_llama(folder / "tiny-f16.partial.gguf")
        os.replace(tmp, f16)
    out = {}
    for level in PROBE_LEVELS:
        path = folder / f"tiny-{level}.gguf"
        if not path.exists():
            quantize_file(f16, path, level, threads)
        out[level] = path
    return out


def probe_key(threads: int) -> str:
    """Changes whenever the build, the CPU or the thread count does."""
    import llama_cpp

    from quantmatrix.engine.cpu import cpu_flags, cpu_model

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    libs = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in lib_dir.glob("*"))
    fault = os.environ.get(FAULT_ENV)
    payload = json.dumps(
        [llama_cpp.__version__, libs, cpu_model(), sorted(cpu_flags()), threads, fault]
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ProbeVerdict:
    extra_bufts: bool
    reason: str
    outcomes: tuple[ChildOutcome, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"extra_bufts": self.extra_bufts, "reason": self.reason,
                "outcomes": [asdict(o) for o in self.outcomes]}  # fmt: skip


def _died(outcome: ChildOutcome, features: str) -> str:
    how = f"died by {outcome.signal}" if outcome.signal else f"exited {outcome.returncode}"
    return (
        f"llama.cpp {how} evaluating a {PROMPT_TOKENS}-token prompt on the tiny {outcome.level} "
        f"model (extra buffer types {'on' if outcome.extra_bufts else 'off'}; engine: {features})"
    )


def run_probe(cache: Path, threads: int) -> ProbeVerdict:
    """Probe both levels with extra buffer types on; after a death by signal, with them off."""
    from quantmatrix.engine.build import system_info

    models = probe_models(cache, threads)
    features = system_info()
    fault = os.environ.get(FAULT_ENV)
    outcomes: list[ChildOutcome] = []
    for extra in (True, False):
        tried = [run_child(lv, ChildJob(models[lv], extra, threads, fault=fault))
                 for lv in PROBE_LEVELS]  # fmt: skip
        outcomes += tried
        bad = next((o for o in tried if not o.ok), None)
        if bad is None:
            if extra:
                return ProbeVerdict(True, "probe passed with llama.cpp's defaults", tuple(outcomes))
            first = next(o for o in outcomes if not o.ok)
            reason = _died(first, features) + "; extra buffer types turned off"
            return ProbeVerdict(False, reason, tuple(outcomes))
        if bad.signal is None:  # a plain error, not a CPU path: turning buffers off won't help
            break
    said = " ".join(outcomes[-1].stderr_tail.split())[-200:]
    raise EngineError(
        f"{_died(outcomes[-1], features)}: {said}; rebuild "
        "llama-cpp-python for this CPU with `rm -rf .venv && make install` and send the output "
        "of `quantmatrix doctor` with a bug report"
    )


def probe_verdict(cache: Path, threads: int) -> ProbeVerdict:
    """The cached verdict for this build, CPU and thread count, probing once when missing."""
    path = cache / "engine-probe" / f"verdict-{probe_key(threads)}.json"
    if path.exists():
        data = json.loads(path.read_text())
        outcomes = tuple(
            ChildOutcome(**{**o, "buffers": tuple(o.get("buffers", ()))}) for o in data["outcomes"]
        )
        return ProbeVerdict(bool(data["extra_bufts"]), str(data["reason"]), outcomes)
    verdict = run_probe(cache, threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, verdict.as_dict())
    return verdict


def main() -> None:
    parser = argparse.ArgumentParser(description="probe llama.cpp on this machine")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--extra-bufts", default="1", help=argparse.SUPPRESS)
    parser.add_argument("--prompt-tokens", type=int, default=PROMPT_TOKENS, help=argparse.SUPPRESS)
    parser.add_argument("--decode-tokens", type=int, default=DECODE_TOKENS, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, default=None)
    ns = parser.parse_args()
    if ns.child is not None:
        _child_main(ns.child, ns.threads, ns.extra_bufts == "1", ns.prompt_tokens, ns.decode_tokens)
        return
    from quantmatrix.models.sources import default_cache

    verdict = run_probe(ns.cache or default_cache(), ns.threads)
    print(json.dumps(verdict.as_dict(), indent=2))


if __name__ == "__main__":
    main()
