"""``python -m tests.campaign_cli ARGS``: the quantmatrix command line with the registry's fake
backend slowed down (tests/slow_backend.py: a fixed sleep per request), so that the kill
campaign on the fake backend (tests/test_campaign_kill.py) can kill a run mid-phase."""

from __future__ import annotations

from quantmatrix.backends import registry

registry.FACTORIES["fake"] = "tests.slow_backend:create"

if __name__ == "__main__":
    from quantmatrix.cli import main

    main()
