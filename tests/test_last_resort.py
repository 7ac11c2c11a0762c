"""The CLI's last resort: an exception no command turned into its one line is a bug; it is
reported in one line naming the file its traceback was saved to, exit 70. The fuzz tests
(tests/fuzz_cases.py) call the commands through typer's runner, which hands such an exception
back instead, so none of their cases can pass by reaching this handler."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from quantmatrix import verify
from quantmatrix.cli import app


def test_an_unexpected_exception_is_one_line_and_a_saved_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def broken(run_dir: Path) -> None:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(verify, "check_run", broken)
    with pytest.raises(SystemExit) as stop:
        app(["verify", str(tmp_path)], prog_name="quantmatrix")
    assert stop.value.code == 70
    captured = capsys.readouterr()
    [line] = [ln for ln in (captured.out + captured.err).splitlines() if ln.strip()]
    assert line.startswith("error: internal error (RuntimeError: a bug); this is a bug in ")
    saved = Path(line.rsplit(" ", 1)[-1])
    assert saved.parent == tmp_path and saved.name.startswith("quantmatrix-crash-")
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: a bug" in text
