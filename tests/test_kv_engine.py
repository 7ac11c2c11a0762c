"""KV-cache types on real llama.cpp: SmolLM2-135M loads and answers with a q8_0 and a q4_0 KV
cache (flash attention on, as a quantized V cache needs), the batched context gets the same
types, the memory child reads llama.cpp's own buffer sizes, and a tiny study logs the pairs and
their memory vs context."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest

from quantmatrix.backends.base import GenerationRequest
from quantmatrix.backends.context_memory import ChildJob, measure
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.config import parse_study
from quantmatrix.engine.load import EngineSettings
from quantmatrix.kvcache import KV_TYPES
from quantmatrix.models.gguf_info import kv_cache_bytes
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import RunLog
from tests.tiny_model import smollm2_path, write_tiny_llama

pytestmark = [pytest.mark.engine]

PROMPTS = [
    "What is the capital of France? Answer in one word.",
    "Name a primary colour.",
    "Write the number that comes after 41.",
    "Say hello in Spanish.",
]


def backend(path: Path, kv: str, batch_size: int = 1) -> LlamaCppBackend:
    engine = EngineSettings(kv_cache=kv)
    options = LlamaCppOptions(512, 2, chat=True, engine=engine, batch_size=batch_size)
    return LlamaCppBackend(path, options)


def answers(path: Path, kv: str) -> list[str]:
    b = backend(path, kv)
    try:
        params = b.llm.context_params
        ggml = getattr(llama_cpp, f"GGML_TYPE_{KV_TYPES[kv].ggml}")
        assert params.type_k == ggml and params.type_v == ggml
        flash = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if kv != "f16" else 0
        assert params.flash_attn_type == flash
        if kv != "f16":
            assert b.info()["engine_settings"]["kv_cache"] == kv
        reqs = [GenerationRequest(f"p{i}", p, 16) for i, p in enumerate(PROMPTS)]
        return [r.text for r in b.generate(reqs)]
    finally:
        b.close()


@pytest.mark.slow
def test_smollm2_answers_with_quantized_kv_caches() -> None:
    path = smollm2_path()
    got = {kv: answers(path, kv) for kv in ("f16", "q8_0", "q4_0")}
    for kv, texts in got.items():
        assert all(t.strip() for t in texts), (kv, texts)
    assert "Paris" in got["q8_0"][0] and "Paris" in got["q4_0"][0]


def test_the_batched_context_keeps_the_kv_type(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "tiny.gguf")
    sizes = {}
    for kv in ("f16", "q8_0"):
        b = backend(path, kv, batch_size=4)
        try:
            reqs = [GenerationRequest(f"r{i}", p, 8, batch_group=0) for i, p in enumerate(PROMPTS)]
            assert len(list(b.generate(reqs))) == 4
            assert b._decoder is not None
            sizes[kv] = llama_cpp.llama_state_get_size(b._decoder.ctx)  # holds the KV cells
        finally:
            b.close()
    # the same cells at 34 bytes per 32 values instead of 64: the state shrinks
    assert sizes["q8_0"] < 0.75 * sizes["f16"]


def test_the_memory_child_reads_llama_cpp_buffers(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "tiny.gguf")
    ballast = bytearray(512 * 2**20)  # this process's peak must not be the child's
    ballast[::4096] = b"\x01" * len(ballast[::4096])
    found = {}
    for kv in ("f16", "q8_0", "q4_0"):
        engine = EngineSettings(kv_cache=kv)
        found[kv] = measure(ChildJob(path, 1024, engine, 2, "full"))
    del ballast
    assert all(m.rss_peak_bytes < 256 * 2**20 for m in found.values())
    f16, q4 = found["f16"], found["q4_0"]
    assert f16.kv_bytes == kv_cache_bytes(path, 1024)  # 2 MiB: llama.cpp's log matches
    # llama.cpp logs MiB with two decimals: equal to within 0.005 MiB
    assert q4.kv_bytes == pytest.approx(kv_cache_bytes(path, 1024, "q4_0"), abs=0.006 * 2**20)
    assert found["q8_0"].flash_attn and not f16.flash_attn
    assert f16.filled_tokens == 1023 and f16.basis == "peak RSS, the whole context filled"
    assert f16.model_bytes > 0 and f16.compute_bytes > 0
    assert f16.peak_bytes == f16.rss_peak_bytes > f16.rss_before_bytes + f16.model_bytes
    batch = measure(ChildJob(path, 1024, EngineSettings(), 2, "batch"))
    assert batch.filled_tokens == 512 and batch.kv_bytes == f16.kv_bytes
    assert batch.peak_bytes >= batch.rss_before_bytes + batch.allocated_bytes


@pytest.mark.slow
def test_a_tiny_study_logs_each_pair_and_its_memory(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "tiny.gguf")
    study = parse_study(
        {
            "name": "kv-engine",
            "models": [{"name": "tiny", "source": str(path), "levels": ["F16", "Q8_0"],
                        "kv_cache": ["f16", "q4_0"]}],
            "tasks": [{"kind": "mmlu", "per_subject": None, "n": 4}],
            "divergence": {"corpus_tokens": 64, "chunk_tokens": 32},
            "warmup_runs": 0, "threads": 2, "context_length": 512, "batch_size": 2,
            "timing": {"multiple_choice": 1, "generation": 0},
            "memory": {"contexts": [1024], "fill": "batch"},
        }
    )  # fmt: skip
    outcome = run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    assert not outcome.failed_variants and outcome.memory_rows == 4 * 2
    log = RunLog.load(tmp_path / "run")
    ids = {"tiny@F16", "tiny@F16+kv-q4_0", "tiny@Q8_0", "tiny@Q8_0+kv-q4_0"}
    assert {r.variant for r in log.samples} == ids
    assert {r.variant for r in log.kld} == ids  # token KL of each pair vs the f16 baseline
    q4 = next(r for r in log.variants if r.variant == "tiny@Q8_0+kv-q4_0")
    assert q4.backend["engine_settings"]["kv_cache"] == "q4_0"
    kv = {(r.variant, r.n_ctx): r.kv_bytes for r in log.memory}
    assert kv[("tiny@F16", 1024)] == 2 * kv[("tiny@F16", 512)]
    assert kv[("tiny@F16+kv-q4_0", 1024)] < kv[("tiny@F16", 1024)] / 3
    write_report(tmp_path / "run")
    assert "## Memory vs context" in (tmp_path / "run" / "report.md").read_text()
