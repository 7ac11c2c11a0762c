"""``python -m tests.slow_cli run ...``: the real command line, its fake backend slowed down
(tests/slow_backend.py, a fixed sleep per request), so a test can act while a run is writing
its folder: start a second command on it, or kill it."""

from __future__ import annotations

from quantmatrix.backends import registry
from quantmatrix.cli import app

if __name__ == "__main__":
    registry.FACTORIES["fake"] = "tests.slow_backend:create"
    app(prog_name="quantmatrix")
