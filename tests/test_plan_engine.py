"""``quantmatrix plan`` with a real calibration: the tiny SmolLM2 preset in an empty cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantmatrix.cli import app
from quantmatrix.models.sources import PACKAGED
from quantmatrix.plan.calibrate import calibrate_file
from tests.tiny_model import smollm2_path

pytestmark = [pytest.mark.engine, pytest.mark.slow]
runner = CliRunner()


def _rows(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("  smollm2-135m-instruct@")]


def test_the_tiny_preset_is_calibrated_once_then_read_from_the_table(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = runner.invoke(app, ["plan", "--preset", "tiny", "--cache", str(cache)])
    assert first.exit_code == 0, first.output
    assert "calibrating smollm2-135m-instruct source (Q4_1" in first.output
    assert "calibrating the quantizer (F16, Q4_K_M, Q8_0" in first.output
    rows = _rows(first.output)
    assert len(rows) == 2 and all(" ~ " in r or "~" in r.split()[3] for r in rows), rows
    assert "total       unknown" not in first.output
    table = json.loads((cache / "calibration" / "speeds.json").read_text())
    sha = PACKAGED["smollm2-135m-instruct"].sha256
    assert any(k.startswith(f"file|{sha}|") for k in table)
    assert {k.split("|")[1] for k in table if k.startswith("quantize|")} == {
        "F16",
        "Q8_0",
        "Q4_K_M",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no run folder

    second = runner.invoke(app, ["plan", "--preset", "tiny", "--cache", str(cache)])
    assert second.exit_code == 0 and "calibrating" not in second.output
    assert _rows(second.output) == rows


def test_without_calibration_an_empty_cache_gives_no_eta(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "--preset", "tiny", "--no-calibrate", "--cache",
                                 str(tmp_path / "cache")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "calibrating" not in result.output and "total       unknown" in result.output
    assert not (tmp_path / "cache").exists()


def test_a_calibration_measures_the_engine_as_the_backend_runs_it() -> None:
    speeds = calibrate_file(smollm2_path(), threads=2, batch=2)
    assert speeds.basis == "measured" and speeds.batch == 2
    assert speeds.prompt_tps > 0 and speeds.decode_tps > 0 and speeds.load_s > 0
    assert speeds.batch_decode_tps is not None and speeds.batch_decode_tps > 0
    assert speeds.chars_per_token is not None and 2.0 < speeds.chars_per_token < 8.0
    assert speeds.template_tokens > 0  # SmolLM2's chat template wraps the prompt
