"""Imports point one way (pyproject.toml's [tool.importlinter] contracts), checked in the tests
as well as by `make lint` so that a cycle cannot come back unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import quantmatrix

ROOT = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def test_import_contracts_are_kept() -> None:
    # a child process: import-linter's console output outlives pytest's capture in-process.
    # It is pointed at the copy of the package these tests import.
    src = Path(quantmatrix.__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-c", LINT, "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "BROKEN" not in done.stdout
