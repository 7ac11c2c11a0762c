"""Importance-matrix levels in the study file, and the report's lines on baselines and matrices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantmatrix.analysis.variant_model import VariantSummary
from quantmatrix.config import ConfigError, parse_study
from quantmatrix.levels import RANK, check_level
from quantmatrix.models.imatrix import DEFAULT_TEXT, ImatrixError, calibration, tool
from quantmatrix.models.ladder import QuantizeError, imatrix_plan, quantize_file, uses_imatrix
from quantmatrix.report.origin_md import origin_notes
from tests.conftest import fake_study_dict
from tests.helpers import variant


def _study(models: list[dict[str, Any]], **over: Any) -> Any:
    return parse_study(fake_study_dict(models=models, **over))


def _model(**over: Any) -> dict[str, Any]:
    return {"name": "m", "source": "x.gguf", "levels": ["F16", "Q4_K_M"], **over}


def test_imat_levels_parse_and_sort_after_their_plain_twin() -> None:
    level = check_level("IQ2_XS-imat")
    assert level.imatrix and level.base == "IQ2_XS" and level.needs_imatrix
    assert RANK["Q4_K_M"] < RANK["Q4_K_M-imat"] < RANK["Q4_K_S"]
    with pytest.raises(ValueError, match="unknown quant level 'Q8_0-imat'"):
        check_level("Q8_0-imat")  # its quantizer ignores a matrix


def test_levels_that_need_a_matrix_say_how_to_ask_for_one() -> None:
    with pytest.raises(ConfigError, match="IQ2_XS needs an importance matrix; write IQ2_XS-imat"):
        _study([_model(levels=["F16", "IQ2_XS"])])
    assert _study([_model(levels=["F16", "IQ2_XS"], imatrix=True)])
    assert _study([_model(levels=["F16", "Q2_K_S-imat"])])


def test_imatrix_is_refused_for_servers_and_where_no_level_uses_it() -> None:
    with pytest.raises(ConfigError, match="importance matrices are built for the llamacpp"):
        _study([_model(backend="fake", levels=["F16", "Q4_K_M-imat"])])
    with pytest.raises(ConfigError, match="none of its levels uses"):
        _study([_model(levels=["F16", "Q8_0"], imatrix=True)])


def test_new_fields_leave_old_config_hashes_alone() -> None:
    plain = _study([_model()])
    assert plain.config_hash() == _study([_model(imatrix=None)]).config_hash()
    assert plain.config_hash() != _study([_model(imatrix=True)]).config_hash()
    text = _study([_model()], calibration={"text": "cal.txt"})
    assert text.config_hash() != plain.config_hash()


def test_which_levels_use_the_matrix(tmp_path: Path) -> None:
    marked = _study([_model(levels=["F16", "Q4_K_M", "IQ2_XS-imat"])])
    plan = imatrix_plan(marked.models[0], marked, 2)
    assert plan is not None and not plan.all_levels
    assert plan.calibration.label == DEFAULT_TEXT and len(plan.calibration.sha256) == 64
    assert [lv for lv in ("F16", "Q4_K_M", "IQ2_XS-imat") if uses_imatrix(lv, plan)] == [
        "IQ2_XS-imat"
    ]
    every = _study([_model(levels=["F16", "Q8_0", "Q4_K_M"], imatrix=True)])
    plan = imatrix_plan(every.models[0], every, 2)
    assert plan is not None
    assert [lv for lv in ("F16", "Q8_0", "Q4_K_M") if uses_imatrix(lv, plan)] == ["Q4_K_M"]
    assert imatrix_plan(_study([_model()]).models[0], _study([_model()]), 2) is None


def test_the_default_calibration_text_is_no_benchmark_text() -> None:
    text = calibration(None).path.read_text()
    assert len(text.split()) > 1000
    for benchmark_marker in ("Question:", "Answer:", "A.", "(A)"):
        assert benchmark_marker not in text
    with pytest.raises(ImatrixError, match="calibration text not found"):
        calibration(Path("/nonexistent/cal.txt"))


def test_a_missing_tool_names_make_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLAMA_CPP_BIN_DIR", str(tmp_path))
    with pytest.raises(ImatrixError, match="make tools"):
        tool("llama-imatrix")


def _summary(level: str, origin: str | None, **over: Any) -> VariantSummary:
    fields = {"is_baseline": True, "origin": origin, "source": "hf:org/m",
              "source_type": "BF16", "reconstructed": False, "imatrix": None, **over}  # fmt: skip
    return variant("m", level, 0.5).model_copy(update=fields)


def test_the_first_lines_name_the_baseline_kind() -> None:
    (line,) = origin_notes([_summary("BF16", "original", source_type="BF16")])
    assert "the original BF16 weights" in line and "hf:org/m" in line
    (line,) = origin_notes([_summary("F16", "original")])
    assert "the original F16 weights" in line and "cast from BF16" in line
    (line,) = origin_notes([_summary("Q8_0", "quantized")])
    assert "quantized from the original BF16 weights" in line
    (line,) = origin_notes([_summary("q8_0", "server", source="qwen2.5:1.5b-q8_0")])
    assert "server's tag `qwen2.5:1.5b-q8_0`" in line
    (line,) = origin_notes([_summary("F16", "reconstruction", source_type="Q4_1")])
    assert "reconstruction of its shipped Q4_1 file" in line
    # a log written before origins existed
    old = variant("m", "F16", 0.5).model_copy(
        update={"is_baseline": True, "source_type": "Q4_1", "reconstructed": True}
    )
    assert "reconstruction of its shipped Q4_1" in origin_notes([old])[0]
    assert origin_notes([_summary("F16", "scripted")]) == []


def test_levels_built_with_a_matrix_are_listed_with_their_text() -> None:
    imat = {"text": DEFAULT_TEXT, "sha256": "ab" * 32}
    rows = [_summary("F16", "original"),
            _summary("IQ2_XS-imat", "quantized", is_baseline=False, imatrix=imat),
            _summary("Q4_K_M", "quantized", is_baseline=False)]  # fmt: skip
    lines = origin_notes(rows)
    assert len(lines) == 2
    assert "m IQ2_XS-imat" in lines[1] and "Q4_K_M" not in lines[1]
    assert DEFAULT_TEXT in lines[1] and "abababababab" in lines[1]


def test_without_a_matrix_the_quantizer_says_how_to_ask(tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="IQ2_XS-imat"):
        quantize_file(tmp_path / "in.gguf", tmp_path / "out.gguf", "IQ2_XS", 1)
