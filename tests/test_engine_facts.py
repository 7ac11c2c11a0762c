"""Engine facts without running the engine: build flags from CPU flags, the NVML reader against
a fake NVML, gpu_layers in the config, the decision's memory column for offloaded models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantmatrix.analysis.variant_model import VariantSummary
from quantmatrix.config import ConfigError, parse_study
from quantmatrix.decision.memory import memory_row
from quantmatrix.engine import build as engine_build
from quantmatrix.engine.cpu import cmake_args, cpu_flags
from quantmatrix.engine.gpu import NvmlReader, gpu_bytes
from tests.conftest import fake_study_dict
from tests.fake_nvml import FakeNvml
from tests.fake_nvml import gpu as _gpu
from tests.helpers import memory_summary

AMX_VM = frozenset(
    [
        "sse4_2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "bmi2",
        "avx512f",
        "avx512cd",
        "avx512vl",
        "avx512dq",
        "avx512bw",
        "avx512vbmi",
        "avx512_vnni",
        "avx512_bf16",
        "avx_vnni",
        "amx_tile",
        "amx_int8",
        "amx_bf16",
    ]
)
AVX2_ONLY = frozenset(["sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"])


def _opts(args: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("-D").split("=", 1) for a in args)


def test_amx_cpu_gets_every_feature_but_amx() -> None:
    opts = _opts(cmake_args(AMX_VM, "x86_64"))
    assert opts["GGML_NATIVE"] == "OFF"
    assert opts["GGML_AVX512"] == opts["GGML_AVX512_VNNI"] == opts["GGML_AVX512_BF16"] == "ON"
    assert opts["GGML_AMX_TILE"] == opts["GGML_AMX_INT8"] == opts["GGML_AMX_BF16"] == "OFF"


def test_amx_only_on_request_and_only_where_the_cpu_has_it() -> None:
    assert _opts(cmake_args(AMX_VM, "x86_64", amx=True))["GGML_AMX_INT8"] == "ON"
    assert _opts(cmake_args(AVX2_ONLY, "x86_64", amx=True))["GGML_AMX_INT8"] == "OFF"


def test_avx512_needs_all_five_subsets() -> None:
    partial = AVX2_ONLY | {"avx512f", "avx512cd", "avx512vl", "avx512dq"}  # no avx512bw
    opts = _opts(cmake_args(partial, "x86_64"))
    assert opts["GGML_AVX512"] == "OFF" and opts["GGML_AVX2"] == "ON"


def test_other_architectures_keep_the_native_default_and_gpu_is_added() -> None:
    assert cmake_args(frozenset({"asimd"}), "aarch64") == []
    assert cmake_args(AVX2_ONLY, "x86_64", gpu="cuda")[-1] == "-DGGML_CUDA=on"
    with pytest.raises(SystemExit, match="unknown GPU backend 'rocm'"):
        cmake_args(AVX2_ONLY, "x86_64", gpu="rocm")


def test_cpu_flags_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu avx2 amx_tile\n\nprocessor : 1\nflags : x\n")
    assert cpu_flags(info) == {"fpu", "avx2", "amx_tile"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_system_info_parsed_per_backend() -> None:
    text = "CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | REPACK = 1 | CUDA : ARCHS = 900 | "
    parsed = engine_build.parse_system_info(text)
    assert parsed["CPU"]["AMX_INT8"] == "1" and parsed["CUDA"]["ARCHS"] == "900"


def test_nvml_reports_this_process_only() -> None:
    nvml = FakeNvml([_gpu(9 * 10**9, [(111, 5 * 10**9), (222, 3 * 10**9)]), _gpu(0, [])])
    reading = NvmlReader(nvml, pid=222).read()
    assert reading.measured and reading.process_bytes == 3 * 10**9
    assert reading.device_used_bytes == 9 * 10**9 and len(reading.devices) == 2
    assert reading.devices[0]["name"] == "NVIDIA H200" and nvml.shutdown == 1


def test_nvml_without_per_process_figures_falls_back_to_device_growth() -> None:
    before = NvmlReader(FakeNvml([_gpu(2 * 10**9, [])]), pid=7).read()
    after = NvmlReader(FakeNvml([_gpu(6 * 10**9, [(7, None)])]), pid=7).read()
    assert after.process_bytes is None
    assert gpu_bytes(after, before) == 4 * 10**9


@pytest.mark.parametrize("fail", ["init", "memory"])
def test_unreadable_nvml_is_not_measured_never_zero(fail: str) -> None:
    reading = NvmlReader(FakeNvml([_gpu(10**9, [(1, 10**9)])], fail=fail), pid=1).read()
    assert not reading.measured and reading.source.startswith("not measured: NVML")
    assert reading.process_bytes is None and gpu_bytes(reading, None) is None


def _summary(memory: dict[str, Any]) -> VariantSummary:
    return memory_summary("m@Q4_K_M", 10**9, memory)


def test_decision_memory_uses_vram_for_an_offloaded_model() -> None:
    gpu = {"source": "NVML (nvidia-ml-py)", "error": None}
    row = memory_row(_summary({"peak_bytes": 3 * 10**9, "offloaded": True,
                               "vram_bytes": 7 * 10**8, "gpu": gpu, "source": "RSS"}))  # fmt: skip
    assert row.used_bytes == 7 * 10**8 and row.basis == "measured"
    assert row.rss_bytes == 3 * 10**9 and row.source == "NVML (nvidia-ml-py)"
    cpu = memory_row(_summary({"peak_bytes": 3 * 10**9, "source": "RSS"}))
    assert cpu.used_bytes == 3 * 10**9 and not cpu.offloaded


def test_offloaded_model_with_unreadable_nvml_falls_back_to_the_estimate() -> None:
    gpu = {"source": "not measured: NVML unavailable", "error": "x"}
    row = memory_row(_summary({"peak_bytes": 3 * 10**9, "offloaded": True,
                               "vram_bytes": None, "gpu": gpu}))  # fmt: skip
    assert row.measured_bytes is None and row.basis == "estimate"
    assert row.verdict == "not measured: estimate used"


def _llama_study(**model: Any) -> dict[str, Any]:
    data = fake_study_dict()
    data["models"] = [{"name": "q", "source": "x.gguf", "levels": ["Q8_0"], **model}]
    return data


def test_gpu_layers_refused_on_a_build_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_build, "supports_gpu_offload", lambda: False)
    with pytest.raises(ConfigError) as err:
        parse_study(_llama_study(gpu_layers=20))
    msg = str(err.value)
    assert "gpu_layers 20 for model 'q'" in msg and "make GPU=cuda install" in msg
    assert "\n" not in msg
    with pytest.raises(ConfigError, match="gpu_layers all"):
        parse_study({**_llama_study(), "gpu_layers": "all"})
    assert (
        parse_study(_llama_study(gpu_layers=0)).gpu_layers_for(
            parse_study(_llama_study(gpu_layers=0)).models[0]
        )
        == 0
    )


def test_gpu_layers_accepted_on_a_gpu_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_build, "supports_gpu_offload", lambda: True)
    study = parse_study({**_llama_study(gpu_layers=12), "gpu_layers": "all"})
    assert study.gpu_layers_for(study.models[0]) == 12  # the model's own wins
    study = parse_study({**_llama_study(), "gpu_layers": "all"})
    assert study.gpu_layers_for(study.models[0]) == -1


def test_gpu_layers_on_a_server_model_is_refused() -> None:
    data = fake_study_dict()
    data["models"][0]["gpu_layers"] = 10
    with pytest.raises(ConfigError, match="applies to the embedded llamacpp backend"):
        parse_study(data)


def test_unset_gpu_layers_leaves_the_config_hash_of_older_runs_alone() -> None:
    study = parse_study(fake_study_dict())
    dumped = study.model_dump(mode="json")
    assert "gpu_layers" in dumped  # the field exists ...
    import hashlib
    import json

    for holder in (dumped, *dumped["models"]):
        # fields added since, at their "as before" value (the defaults of batch_size, 4, and
        # timing, on, are not)
        for name in ("gpu_layers", "imatrix", "calibration", "sampling", "endpoints",
                     "kv_cache", "baseline_kv", "memory", "long_context"):  # fmt: skip
            holder.pop(name, None)
    old = hashlib.sha256(
        json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert study.config_hash() == old  # ... but only counts when set
    assert parse_study({**fake_study_dict(), "gpu_layers": 0}).config_hash() != old
