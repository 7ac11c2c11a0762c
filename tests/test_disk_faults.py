"""Disk and permission faults (issue 17 item 3): a disk that fills up while a run or a report
is written, and a read-only run folder. Each is one line and a non-zero exit, no traceback,
the rows already written intact (verify clean), no half-written report file, and a rerun after
space is freed resumes and completes. Faults are injected by tests/faults.py; the same on a
real tmpfs is bench/campaign_disk.py (needs root)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from quantmatrix.cli import app
from quantmatrix.runlog import SAMPLES, read_rows
from quantmatrix.runlog.lock import LOCK
from tests.conftest import fake_study_dict
from tests.faults import DiskFaults

runner = CliRunner()
PLANNED = 3 * 18  # three levels x (12 MMLU + 6 ARC) in fake_study_dict


def lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.strip()]


def one_error(result: Result) -> str:
    output = result.output
    assert result.exit_code == 2, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    [line] = lines(output)
    assert line.startswith("error: ")
    return line


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(fake_study_dict()))
    return path


def run(study: Path, out: Path) -> Result:
    return runner.invoke(app, ["run", str(study), "--out", str(out), "--quiet"])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def check_clean(out: Path) -> None:
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0 and "warning" not in result.output, result.output


@pytest.mark.parametrize("cut_back_fails", [False, True])
def test_disk_full_while_logging_then_a_rerun_resumes(
    tmp_path: Path, study: Path, monkeypatch: pytest.MonkeyPatch, cut_back_fails: bool
) -> None:
    out = tmp_path / "run"
    faults = DiskFaults(
        monkeypatch, out, budget=9_000, names=(SAMPLES,), cut_back_fails=cut_back_fails
    )
    line = one_error(run(study, out))
    assert line == (
        f"error: no space left on device while writing {out / SAMPLES}: free space and rerun "
        "the same command; rows already written are kept"
    )
    assert faults.refused[SAMPLES] == 1 + cut_back_fails and not (out / LOCK).exists()
    data = (out / SAMPLES).read_bytes()
    kept = read_rows(out / SAMPLES)
    assert 0 < len(kept.rows) < PLANNED and not kept.problems
    assert kept.torn_tail == cut_back_fails  # cut back, or (if that failed too) a torn tail
    verify = runner.invoke(app, ["verify", str(out)])
    assert verify.exit_code == 0 and ("incomplete" in verify.output) == cut_back_fails

    faults.free()
    result = run(study, out)
    assert result.exit_code == 0, result.output
    assert f"evaluated {PLANNED - len(kept.rows)} samples, reused {len(kept.rows)}" in (
        result.output
    )
    whole = data[: data.rfind(b"\n") + 1]
    assert (out / SAMPLES).read_bytes().startswith(whole)  # the rows written stay as they were
    assert len(read_rows(out / SAMPLES).rows) == PLANNED
    check_clean(out)


@pytest.mark.parametrize(
    "victim", ["analysis.json", "report.md", "report.html", "quality_vs_memory.png"]
)
def test_disk_full_while_writing_the_report_leaves_the_old_file_whole(
    tmp_path: Path, study: Path, monkeypatch: pytest.MonkeyPatch, victim: str
) -> None:
    out = tmp_path / "run"
    assert run(study, out).exit_code == 0
    (out / "report.md").write_text("the previous report\n")
    before = snapshot(out)
    faults = DiskFaults(monkeypatch, out, budget=100, names=(victim,))
    line = one_error(runner.invoke(app, ["report", str(out)]))
    assert line.startswith("error: no space left on device while writing ") and victim in line
    assert faults.refused and not (out / LOCK).exists()
    after = snapshot(out)
    assert sorted(after) == sorted(before)  # no temporary file left behind
    assert after["report.md"] == b"the previous report\n"  # not reached or refused: old kept
    [name] = [name for name in before if name.endswith(victim)]
    assert after[name] == before[name]
    faults.free()
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    assert (out / "report.md").read_text() != "the previous report\n"
    check_clean(out)


def test_a_read_only_run_folder_is_one_line_for_writers_and_fine_for_readers(
    tmp_path: Path, study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    assert run(study, out).exit_code == 0
    before = snapshot(out)
    DiskFaults(monkeypatch, out, read_only=True)
    for result in (
        run(study, out),
        runner.invoke(app, ["report", str(out)]),
        runner.invoke(app, ["verify", "--repair", str(out)]),
    ):
        assert one_error(result) == (
            f"error: read-only file system while writing {out / LOCK}: make the folder "
            "writable or choose another --out; rows already written are kept"
        )
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
    assert runner.invoke(app, ["recommend", str(out)]).exit_code == 0
    assert snapshot(out) == before


def test_a_folder_turned_read_only_mid_run_then_writable_again_resumes(
    tmp_path: Path, study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    faults = DiskFaults(monkeypatch, out, budget=12_000, names=(SAMPLES,))
    one_error(run(study, out))
    written = len(read_rows(out / SAMPLES).rows)
    faults.free()
    faults.read_only = True  # remounted read-only after the disk filled
    line = one_error(run(study, out))
    assert "read-only file system while writing" in line
    faults.free()
    result = run(study, out)
    assert result.exit_code == 0 and f"reused {written}" in result.output
    check_clean(out)


def test_disk_full_while_updating_the_manifest_keeps_the_old_one(
    tmp_path: Path, study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    assert run(study, out).exit_code == 0
    manifest = (out / "manifest.json").read_bytes()
    DiskFaults(monkeypatch, out, budget=1_000, names=("manifest.json",))
    line = one_error(run(study, out))
    assert "no space left on device while writing" in line and "manifest.json" in line
    assert (out / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
