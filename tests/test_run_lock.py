"""One run per folder (issue 17 item 2): ``run.lock``, refused in one line naming the holder,
a lock left by a killed run taken over with one warning, released on every exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from quantmatrix.cli import app
from quantmatrix.runlog import SAMPLES
from quantmatrix.runlog.lock import LOCK, RunInUseError, hold_run_dir, holder_of
from tests.conftest import fake_study_dict

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.strip()]


def slow_run(study: Path, out: Path) -> subprocess.Popen[bytes]:
    """A real ``quantmatrix run`` in another process, 0.15 s per request."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    cmd = [sys.executable, "-m", "tests.slow_cli", "run", str(study), "--out", str(out)]
    return subprocess.Popen(
        [*cmd, "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_for_rows(out: Path, proc: subprocess.Popen[bytes], n: int = 3) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        path = out / SAMPLES
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run wrote no rows within 60 s")


@pytest.mark.slow
def test_second_run_is_refused_and_a_killed_runs_lock_is_taken_over(tmp_path: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump(fake_study_dict()))
    out = tmp_path / "run"
    proc = slow_run(study, out)
    try:
        wait_for_rows(out, proc)
        held = json.loads((out / LOCK).read_text())
        assert held["pid"] == proc.pid and held["command"].startswith("quantmatrix run")
        for args in (["run", str(study), "--out", str(out)], ["report", str(out)]):
            before = (out / SAMPLES).read_bytes()
            result = runner.invoke(app, [*args, "--quiet"] if args[0] == "run" else args)
            [line] = lines(result.output)
            assert result.exit_code == 2, result.output
            assert line.startswith(f"error: {out} is in use by PID {proc.pid} on ")
            assert "(quantmatrix run " in line and "wait for it to finish" in line
            assert (out / SAMPLES).read_bytes().startswith(before)  # its writer goes on
        repair = runner.invoke(app, ["verify", "--repair", str(out)])
        assert repair.exit_code == 2 and f"PID {proc.pid}" in repair.output
        assert runner.invoke(app, ["verify", str(out)]).exit_code == 0  # reading needs no lock
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (out / LOCK).exists() and holder_of(out) is None  # left behind, but held by no one
    result = runner.invoke(app, ["run", str(study), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    warning = [ln for ln in lines(result.output) if ln.startswith("warning:")]
    assert len(warning) == 1 and f"took over {LOCK} from PID {proc.pid}" in warning[0]
    assert not (out / LOCK).exists()
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0


def holder_process(folder: Path) -> subprocess.Popen[bytes]:
    """Another process holding ``folder`` until its stdin closes."""
    code = (
        "import sys; from pathlib import Path; from quantmatrix.runlog.lock import hold_run_dir\n"
        f"with hold_run_dir(Path({str(folder)!r}), create=True):\n"
        "    print('held', flush=True); sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
    return proc


def test_a_live_holder_is_named_and_released_on_exit(tmp_path: Path) -> None:
    proc = holder_process(tmp_path)
    with (
        pytest.raises(RunInUseError, match=rf"in use by PID {proc.pid} on .* since "),
        hold_run_dir(tmp_path),
    ):
        pass
    holder = holder_of(tmp_path)
    assert holder is not None and holder.pid == proc.pid
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait() == 0
    assert not (tmp_path / LOCK).exists() and holder_of(tmp_path) is None
    with hold_run_dir(tmp_path):  # free again, and this process is named as its holder
        mine = holder_of(tmp_path)
        assert mine is not None and mine.pid == os.getpid()


def test_holding_is_reentrant_and_the_file_goes_with_the_last_holder(tmp_path: Path) -> None:
    warned: list[str] = []
    with hold_run_dir(tmp_path, warned):
        mine = json.loads((tmp_path / LOCK).read_text())
        assert mine["pid"] == os.getpid()
        with hold_run_dir(tmp_path, warned):
            assert (tmp_path / LOCK).exists()
        assert (tmp_path / LOCK).exists()
    assert not (tmp_path / LOCK).exists() and warned == []


def test_a_stale_lock_is_taken_over_with_one_warning(tmp_path: Path) -> None:
    stale = {"pid": 999999, "host": "elsewhere", "started_utc": "2020-01-01T00:00:00Z",
             "command": "quantmatrix run s.yaml"}  # fmt: skip
    (tmp_path / LOCK).write_text(json.dumps(stale))
    warned: list[str] = []
    with hold_run_dir(tmp_path, warned):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    [line] = warned
    assert "took over run.lock from PID 999999 on elsewhere since 2020-01-01T00:00:00Z" in line
    (tmp_path / LOCK).write_bytes(b"\x00garbage")  # a lock file torn by a kill: still stale
    warned.clear()
    with hold_run_dir(tmp_path, warned):
        pass
    assert len(warned) == 1 and "from a process" in warned[0]


def test_a_missing_folder_is_not_created_by_a_reader_that_writes(tmp_path: Path) -> None:
    gone = tmp_path / "nope"
    for args in (["report", str(gone)], ["verify", "--repair", str(gone)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and lines(result.output) == [
            f"error: {gone} holds no run (no such folder)"
        ]
    assert not gone.exists()


def test_a_file_given_as_the_run_folder_is_one_line(tmp_path: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump(fake_study_dict()))
    for args in (["run", str(study), "--out", str(study), "--quiet"], ["report", str(study)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert lines(result.output) == [f"error: {study} is a file, not a run folder"]
