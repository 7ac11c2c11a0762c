"""The engine probe on the real llama.cpp build: the check that would have caught SIGILL.

A quantized model (Q8_0 and Q4_K_M of the tests' tiny model) is loaded with all cores and a
96-token prompt is evaluated in a child process; a child that dies by a signal fails the test
with the signal's name and the engine's features. Then the probe's fallback is exercised for
real: a child that raises SIGILL (fault injection) makes the verdict turn the extra buffer types
off, and the backend runs with them off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantmatrix.backends.base import GenerationRequest
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.cli import app
from quantmatrix.engine import probe, settings
from quantmatrix.engine.build import parse_system_info, system_info
from quantmatrix.engine.gpu import GpuMemory, NvmlReader
from quantmatrix.models.ladder import build_ladder_files
from tests.tiny_model import write_tiny_llama

pytestmark = pytest.mark.engine

CORES = os.cpu_count() or 1


@pytest.fixture(scope="module")
def tiny_quants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("probe")
    f16 = write_tiny_llama(folder / "tiny-f16.gguf")
    built = build_ladder_files(f16, list(probe.PROBE_LEVELS), folder, CORES)
    return {info.file_type: path for path, info in built}


@pytest.mark.parametrize("level", probe.PROBE_LEVELS)
def test_quantized_model_evaluates_with_all_cores(tiny_quants: dict[str, Path], level: str) -> None:
    assert probe.PROMPT_TOKENS >= 64
    job = probe.ChildJob(tiny_quants[level], extra_bufts=True, threads=CORES)
    outcome = probe.run_child(level, job)
    assert outcome.ok, (
        f"llama.cpp died by {outcome.signal or outcome.returncode} on {level} with "
        f"{CORES} threads; engine: {system_info()}; stderr: {outcome.stderr_tail}"
    )
    assert outcome.prompt_tps and outcome.prompt_tps > 0 and outcome.decode_tps


def test_extra_buffer_types_off_really_loads_without_them(tiny_quants: dict[str, Path]) -> None:
    cpu = parse_system_info(system_info()).get("CPU", {})
    on = probe.run_child("Q4_K_M", probe.ChildJob(tiny_quants["Q4_K_M"], True, CORES))
    off = probe.run_child("Q4_K_M", probe.ChildJob(tiny_quants["Q4_K_M"], False, CORES))
    assert on.ok and off.ok
    assert "CPU_REPACK" not in off.buffers and "AMX" not in off.buffers
    if cpu.get("REPACK") == "1" and cpu.get("AVX2") == "1":  # Q4_K repacks on AVX2
        assert "CPU_REPACK" in on.buffers, on.stderr_tail


def test_a_child_dying_by_sigill_turns_extra_buffer_types_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(probe.FAULT_ENV, "SIGILL")
    verdict = probe.run_probe(tmp_path, CORES)
    assert not verdict.extra_bufts
    assert "died by SIGILL" in verdict.reason and "turned off" in verdict.reason
    first, *rest = verdict.outcomes
    assert first.signal == "SIGILL" and first.extra_bufts
    assert all(o.ok for o in rest if not o.extra_bufts)


def test_backend_runs_with_the_verdict_of_a_faulty_machine(
    tiny_quants: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(probe.FAULT_ENV, "SIGILL")
    monkeypatch.delenv(settings.EXTRA_BUFTS_ENV, raising=False)
    settings._extra_bufts.cache_clear()
    try:
        engine = settings.machine_settings(0, cache=tmp_path)
    finally:
        settings._extra_bufts.cache_clear()
    assert not engine.extra_bufts and "SIGILL" in engine.reason
    cached = list((tmp_path / "engine-probe").glob("verdict-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["extra_bufts"] is False
    backend = LlamaCppBackend(tiny_quants["Q8_0"], LlamaCppOptions(256, CORES, chat=False,
                                                                   engine=engine))  # fmt: skip
    try:
        (result,) = backend.generate([GenerationRequest("k", "Hello world", max_tokens=4)])
        assert result.timing.generated_tokens >= 1
        assert backend.info()["engine_settings"]["extra_bufts"] is False
    finally:
        backend.close()


def test_doctor_names_versions_paths_and_assets(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["doctor", "--no-probe", "--cache", str(tmp_path)])
    assert result.exit_code == 0, result.output
    expected_lines = (
        "llama-cpp-python 0.3.36",
        "paths: AMX=",
        "REPACK=",
        "OPENMP=",
        "GPU offload:",
        "assets:",
        "MMLU + ARC-Challenge:",
        f"cache: {tmp_path}",
    )
    for expected in expected_lines:
        assert expected in result.output, expected
    facts = json.loads(CliRunner().invoke(app, ["doctor", "--json", "--no-probe"]).output)
    assert facts["build"]["llama_cpp_python"] == "0.3.36"
    assert any(d["kind"] == "cpu" for d in facts["build"]["devices"])


def test_offloaded_backend_reports_vram_from_nvml_into_the_decision(
    tiny_quants: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpu_layers on (harmless on a CPU build): the backend reads NVML before and after load;
    here a fake NVML says this process holds 1.5 GB, and the decision's memory row uses it."""
    from quantmatrix.backends import llamacpp
    from quantmatrix.decision.memory import memory_row
    from quantmatrix.engine.load import EngineSettings
    from tests.fake_nvml import FakeNvml, gpu
    from tests.helpers import memory_summary

    held = 15 * 10**8
    readers = iter([[gpu(10**9, [])], [gpu(10**9 + held, [(os.getpid(), held)])]])

    def reader() -> NvmlReader:
        devices = next(readers, None) or [gpu(10**9 + held, [(os.getpid(), held)])]
        return NvmlReader(FakeNvml(devices))

    class Script:
        def read(self) -> GpuMemory:
            return reader().read()

    monkeypatch.setattr(llamacpp, "NvmlReader", Script)
    engine = EngineSettings(gpu_layers=-1, extra_bufts=True)
    backend = LlamaCppBackend(tiny_quants["Q8_0"], LlamaCppOptions(256, CORES, False, 42, engine))
    try:
        reading = backend.memory()
    finally:
        backend.close()
    assert reading is not None and reading.extra["offloaded"] is True
    assert reading.extra["vram_bytes"] == held
    memory = {"peak_bytes": reading.peak_bytes, "source": reading.source, **reading.extra}
    row = memory_row(memory_summary("t@Q8_0", 10**7, memory))
    assert row.used_bytes == held and row.rss_bytes == reading.peak_bytes
