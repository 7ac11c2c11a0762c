"""The server-fault campaign: a small study on a server backend through the fault proxy
(tests/fault_proxy.py), against the Ollama stand-in (tests/ollama_standin.py) or a real
``python -m llama_cpp.server`` on SmolLM2, compared with a fault-free run through the same
proxy (so the endpoint, and the config hash, are the same). bench/campaign_server.py runs it in
full, tests/test_campaign_server.py reduced.

The study runs in this process (``run_study``, then the report), with the server backends
built as their registry's ``create`` builds them but with a short timeout and quick retries
(:func:`backend_factory`): the schedule's stalls must outlast the timeout, and a restarted
server must be back within the retries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from quantmatrix.backends.base import Backend
from quantmatrix.backends.http import server_options
from quantmatrix.backends.ollama import OllamaBackend
from quantmatrix.backends.openai_compat import OpenAIBackend
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, RunOutcome, run_study
from quantmatrix.pipeline.executors.base import BackendFactory
from quantmatrix.report.render import write_report
from quantmatrix.verify import check_run
from tests import log_compare
from tests.fault_proxy import FaultProxy, ProxyCounts, Schedule
from tests.ollama_standin import OllamaStandIn, prompt_of

TAGS = {"Q8_0": "tiny:q8_0", "Q4_K_M": "tiny:q4_K_M"}


@dataclass(frozen=True)
class Retry:
    """The client's patience: a stall must outlast ``timeout_s``; a restart must end within
    the retries' backoff, ``backoff_s * (2**retries - 1)`` seconds in all."""

    timeout_s: float
    retries: int
    backoff_s: float

    @property
    def patience_s(self) -> float:
        return self.backoff_s * (2**self.retries - 1)


def backend_factory(retry: Retry) -> BackendFactory:
    """The registry's server backends, with ``retry``'s timeout and retries."""

    def create(variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        ollama = spec.backend == "ollama"
        options = dataclasses.replace(
            server_options(spec, study, logprobs=ollama),
            timeout_s=retry.timeout_s, retries=retry.retries, backoff_s=retry.backoff_s,
        )  # fmt: skip
        assert spec.endpoint is not None
        if not ollama:
            return OpenAIBackend(spec.endpoint, spec.server_model(variant.level), options)
        backend = OllamaBackend(spec.endpoint, spec.server_model(variant.level), options)
        try:
            backend.ensure_model(show_progress=False)
        except BaseException:
            backend.close()
            raise
        return backend

    return create


def standin_reply(body: dict[str, Any]) -> str:
    """A reply that depends only on (model, prompt): an option letter for a multiple-choice
    prompt, a few words otherwise, so every request has its own answer."""
    prompt = prompt_of(body)
    pick = int(hashlib.sha256(f"{body.get('model')}|{prompt}".encode()).hexdigest(), 16)
    options = [ln[0] for ln in prompt.splitlines() if ln[1:3] == ". " and ln[0].isupper()]
    if options:
        return f"{options[pick % len(options)]}. because it fits\nmore words after the line"
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    return " ".join(words[(pick >> (3 * i)) % len(words)] for i in range(12))


class StandinUpstream:
    """The Ollama stand-in, killed (stopped) and started again on a new port."""

    def __init__(self) -> None:
        self.server = self._new()

    @staticmethod
    def _new() -> OllamaStandIn:
        return OllamaStandIn(models=dict.fromkeys(TAGS.values(), 100_000_000),
                             reply=standin_reply).start()  # fmt: skip

    @property
    def address(self) -> tuple[str, int]:
        assert self.server._server is not None
        return "127.0.0.1", int(self.server._server.server_address[1])

    def kill(self) -> None:
        self.server.stop()

    def start(self) -> tuple[str, int]:
        self.server = self._new()
        return self.address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaUpstream:
    """``python -m llama_cpp.server`` on SmolLM2, one thread, at a fixed port."""

    def __init__(self, model: Path, log: Path) -> None:
        self.model, self.port, self.log = model, free_port(), log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> tuple[str, int]:
        """Start it (it listens once the model is loaded); returns before it is up."""
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "1024",
               "--n_threads", "1", "--n_threads_batch", "1"]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        return self.address

    def wait_up(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}/v1/models"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("llama_cpp.server did not come up in time")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def server_study(endpoint: str, backend: str, mc: int, tags: dict[str, str] | None = None) -> Study:
    """Two levels (``tags``: their served names, default :data:`TAGS`), ``mc`` multiple-choice
    items (MMLU + ARC-Challenge), a single-stream timing subset."""
    model: dict[str, Any] = {"name": "tiny", "backend": backend, "endpoint": endpoint,
                             "source": "tiny", "levels": list(TAGS),
                             "tags": tags or TAGS}  # fmt: skip
    return parse_study({
        "name": f"server-faults-{backend}",
        "models": [model],
        "tasks": [{"kind": "mmlu", "per_subject": None, "n": mc - mc // 2},
                  {"kind": "arc_challenge", "n": mc // 2}],
        "warmup_runs": 1, "context_length": 1024,
        "decoding": {"mc_max_new_tokens": 12},
        "timing": {"multiple_choice": 2, "generation": 0, "round_items": 2, "warmup_runs": 0},
    })  # fmt: skip


@dataclass
class ServerVerdict:
    counts: ProxyCounts
    planned: dict[str, int]
    outcomes: list[RunOutcome]  # the faulted run, then its reruns
    comparisons: list[log_compare.FileComparison]
    problems: list[str]  # verify's, on the faulted run's folder
    analysis_equal: bool
    wall_s: float

    @property
    def mismatches(self) -> int:
        c = self.comparisons
        return sum(len(x.lost) + len(x.extra) + len(x.duplicated) + len(x.mismatched) for x in c)

    def summary(self) -> list[str]:
        faults = ", ".join(f"{k} {n}" for k, n in sorted(self.counts.faults.items()))
        out = [f"faults injected: {faults} ({sum(self.counts.faults.values())} in all; "
               f"planned {dict(sorted(self.planned.items()))})",
               f"requests through the proxy: {self.counts.requests}, forwarded "
               f"{self.counts.forwarded}, retries seen {self.counts.retries}, "
               f"finding the server down {self.counts.upstream_down}"]  # fmt: skip
        failed = [o.failed_variants for o in self.outcomes]
        out.append(f"runs: {len(self.outcomes)}, failed variants per run: {failed}")
        out += log_compare.lines(self.comparisons)
        compared = sum(c.compared for c in self.comparisons)
        out.append(
            f"rows compared: {compared}, mismatches: {self.mismatches}, verify problems: "
            f"{len(self.problems)}, analysis equal but for timing: {self.analysis_equal}"
        )
        out.append(f"wall: {self.wall_s:.0f} s")
        return out


def run_to_end(study: Study, out: Path, factory: BackendFactory, cache: Path,
               max_runs: int = 3) -> list[RunOutcome]:  # fmt: skip
    """Run, and rerun while a variant failed (the server was down past the retries)."""
    outcomes = []
    for _ in range(max_runs):
        outcomes.append(run_study(study, RunOptions(out, cache), factory))
        if not outcomes[-1].failed_variants:
            break
    write_report(out)
    return outcomes


def campaign(
    proxy: FaultProxy, schedule: Schedule, study: Study, retry: Retry, work: Path,
    before_rerun: Any = None,
) -> ServerVerdict:  # fmt: skip
    """The fault-free reference through ``proxy``, then the same study with ``schedule``'s
    faults; ``before_rerun`` (if given) is called before each rerun after a failed variant."""
    factory = backend_factory(retry)
    reference, faulted, cache = work / "reference", work / "faulted", work / "cache"
    proxy.schedule = Schedule()
    run_to_end(study, reference, factory, cache, max_runs=1)
    proxy.counts = ProxyCounts()
    proxy.schedule = schedule
    started = time.monotonic()
    outcomes = [run_study(study, RunOptions(faulted, cache), factory)]
    while outcomes[-1].failed_variants and len(outcomes) < 4:
        if before_rerun is not None:
            before_rerun()
        outcomes.append(run_study(study, RunOptions(faulted, cache), factory))
    write_report(faulted)
    wall = time.monotonic() - started
    return ServerVerdict(
        counts=proxy.counts,
        planned=dict(schedule.planned()),
        outcomes=outcomes,
        comparisons=log_compare.compare_runs(reference, faulted),
        problems=check_run(faulted).problems,
        analysis_equal=log_compare.analysis_quality(reference)
        == log_compare.analysis_quality(faulted),
        wall_s=wall,
    )
