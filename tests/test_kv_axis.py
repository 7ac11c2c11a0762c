"""The KV-cache type as an axis of the matrix, on the fake backend: variant ids and order, the
config hash of a study without the axis, the baseline, the analysis and the server rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantmatrix.config import ConfigError, parse_study
from quantmatrix.kvcache import kv_bytes, label_rank, split_label, variant_label
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import RunLog
from tests.conftest import fake_study_dict


def kv_study(**model: Any) -> dict[str, Any]:
    spec = {"name": "m", "source": "fake", "backend": "fake", "levels": ["F16", "Q4_K_M"]}
    return fake_study_dict(models=[{**spec, **model}], batch_size=1)


def test_labels_keep_the_plain_level_for_f16_and_mark_the_others() -> None:
    assert variant_label("Q4_K_M") == "Q4_K_M" == variant_label("Q4_K_M", "f16")
    assert variant_label("Q4_K_M", "q8_0") == "Q4_K_M+kv-q8_0"
    assert split_label("Q4_K_M+kv-q8_0") == ("Q4_K_M", "q8_0")
    assert split_label("Q4_K_M-imat") == ("Q4_K_M-imat", "f16")
    labels = ["Q4_K_M+kv-q4_0", "F16+kv-q8_0", "Q4_K_M", "F16", "Q8_0+kv-q4_0"]
    assert sorted(labels, key=label_rank) == [
        "F16", "F16+kv-q8_0", "Q8_0+kv-q4_0", "Q4_K_M", "Q4_K_M+kv-q4_0",
    ]  # fmt: skip
    # 24 layers x 128 (2 KV heads x 64) x 8192 tokens, K and V: llama.cpp reports 96 MiB
    assert kv_bytes(8192, 24, 128) == 96 * 2**20
    assert kv_bytes(8192, 24, 128, "q8_0") == 51 * 2**20  # llama.cpp: 51.00 MiB


def test_the_axis_makes_level_by_kv_variants_in_ladder_order() -> None:
    spec = parse_study(kv_study(kv_cache=["q4_0", "f16", "q8_0"])).models[0]
    assert spec.ordered_labels == [
        "F16", "F16+kv-q8_0", "F16+kv-q4_0", "Q4_K_M", "Q4_K_M+kv-q8_0", "Q4_K_M+kv-q4_0",
    ]  # fmt: skip
    assert spec.baseline_id == "m@F16"
    chosen = parse_study(kv_study(kv_cache=["q8_0", "q4_0"])).models[0]
    assert chosen.baseline_id == "m@F16+kv-q8_0"  # no f16 listed: the widest listed
    named = parse_study(kv_study(kv_cache=["f16", "q8_0"], baseline_kv="q8_0")).models[0]
    assert named.baseline_id == "m@F16+kv-q8_0"


def test_a_study_without_the_axis_keeps_its_config_hash() -> None:
    plain = parse_study(fake_study_dict())
    spelled = fake_study_dict()
    spelled["models"][0] |= {"kv_cache": None, "baseline_kv": None}
    assert parse_study({**spelled, "memory": None}).config_hash() == plain.config_hash()
    assert (
        parse_study(kv_study(kv_cache=["f16"])).config_hash()
        != parse_study(kv_study()).config_hash()
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"kv_cache": ["q8_0", "q8_0"]}, "a KV-cache type is listed twice"),
        ({"kv_cache": ["f16"], "baseline_kv": "q8_0"}, "baseline_kv 'q8_0' is not among"),
        ({"kv_cache": ["q5_0"]} | {"backend": "ollama", "source": "x:1b"}, "takes f16, q8_0"),
        ({"kv_cache": ["f16", "q8_0"], "backend": "ollama", "source": "x:1b"}, "server-wide"),
        ({"kv_cache": ["q3_0"]}, "kv_cache.0"),
    ],
)
def test_bad_kv_settings_are_refused_in_one_line(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_study(kv_study(**model))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_two_kv_types_on_one_ollama_server_are_refused() -> None:
    def ollama(name: str, **over: Any) -> dict[str, Any]:
        return {"name": name, "backend": "ollama", "source": "x:1b", "levels": ["Q8_0"], **over}

    models = [ollama("a"), ollama("b", kv_cache=["q8_0"])]  # a: the server's default, f16
    with pytest.raises(ConfigError) as caught:
        parse_study(fake_study_dict(models=models))
    text = str(caught.value)
    assert "models 'a' and 'b'" in text and "http://127.0.0.1:11434" in text
    assert "start a second server" in text and "\n" not in text
    second = ollama("b", kv_cache=["q8_0"], endpoint="http://127.0.0.1:11435")
    study = parse_study(fake_study_dict(models=[ollama("a"), second]))
    assert [m.baseline_id for m in study.models] == ["a@Q8_0", "b@Q8_0+kv-q8_0"]


def test_a_fake_study_runs_every_pair_against_the_f16_baseline(tmp_path: Path) -> None:
    study = parse_study(kv_study(kv_cache=["f16", "q8_0", "q4_0"]))
    outcome = run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    assert not outcome.failed_variants
    log = RunLog.load(tmp_path / "run")
    ids = [f"m@{label}" for label in study.models[0].ordered_labels]
    assert {r.variant for r in log.samples} == set(ids)
    assert {r.level for r in log.samples if r.variant == "m@Q4_K_M+kv-q8_0"} == {"Q4_K_M+kv-q8_0"}
    analysis = write_report(tmp_path / "run")[1]
    by_id = {v.variant: v for v in analysis.variants}
    assert [v.variant for v in analysis.variants] == ids
    assert by_id["m@F16"].is_baseline and by_id["m@F16"].kv_cache == "f16"
    assert by_id["m@F16+kv-q4_0"].kv_cache == "q4_0" and not by_id["m@F16+kv-q4_0"].is_baseline
    for vid, summary in by_id.items():  # each pair is compared with the one baseline
        if vid != "m@F16":
            assert summary.certified is not None and summary.certified.baseline == "m@F16"
            assert "(by level, then KV-cache type)" in summary.certified.family_rule
            assert summary.delta_pp is not None
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Q4_K_M+kv-q8_0" in report


def test_a_ray_actor_asks_for_the_memory_of_its_kv_type(tmp_path: Path) -> None:
    from dataclasses import replace

    from quantmatrix.engine.tiny_model import write_tiny_llama
    from quantmatrix.models.gguf_info import kv_cache_bytes, read_info
    from quantmatrix.models.ladder import Variant
    from quantmatrix.pipeline.executors.placement import MEMORY_MARGIN, memory_bytes

    path = write_tiny_llama(tmp_path / "tiny.gguf")
    study = parse_study(kv_study(kv_cache=["f16", "q4_0"]))
    f16 = Variant("m", "F16", path, read_info(path), "x", "F16", False)
    q4 = replace(f16, kv_cache="q4_0")
    assert q4.id == "m@F16+kv-q4_0" and q4.path == f16.path  # one file for both
    size, ctx = path.stat().st_size, study.context_length
    assert memory_bytes(f16, study) == int((size + kv_cache_bytes(path, ctx)) * MEMORY_MARGIN)
    kv_q4 = kv_cache_bytes(path, ctx, "q4_0")
    assert kv_q4 is not None and memory_bytes(q4, study) == int((size + kv_q4) * MEMORY_MARGIN)


def test_an_ollama_variant_names_the_server_kv_type_and_has_no_memory_phase(
    tmp_path: Path,
) -> None:
    from tests.ollama_standin import OllamaStandIn

    server = OllamaStandIn(models={"tiny:q4_K_M": 300_000_000}).start()
    try:
        model = {"name": "tiny", "backend": "ollama", "endpoint": server.url, "source": "tiny",
                 "levels": ["Q4_K_M"], "kv_cache": ["q8_0"]}  # fmt: skip
        data = fake_study_dict(models=[model], tasks=[{"kind": "arc_challenge", "n": 3}])
        study = parse_study({**data, "memory": {"contexts": [4096]}})
        outcome = run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    finally:
        server.stop()
    assert not outcome.failed_variants and outcome.memory_rows == 0  # a server's own memory
    log = RunLog.load(tmp_path / "run")
    assert {r.variant for r in log.samples} == {"tiny@Q4_K_M+kv-q8_0"}
    (row,) = log.variants
    assert row.backend["kv_cache"] == {"type": "q8_0", "set_by": "the server"}
    assert row.backend["tag"] == "tiny:q4_K_M"  # the level's tag: the KV type is no tag


def test_the_kv_preset_has_the_axis_and_memory_vs_context() -> None:
    from quantmatrix.cli import PRESETS, preset_study

    assert "kv" in PRESETS
    study = preset_study("kv")
    spec = study.models[0]
    assert spec.baseline_id == "qwen2.5-coder-0.5b-instruct@Q8_0"
    assert len(spec.ordered_labels) == 6 and "Q4_K_M+kv-q4_0" in spec.ordered_labels
    assert study.memory is not None and study.memory.lengths(study.context_length) == [2048, 8192]
