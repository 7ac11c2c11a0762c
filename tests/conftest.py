from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from quantmatrix.config import Study, parse_study

# CI draws the same fuzz cases every run (a red run means the code changed, not the draw);
# elsewhere Hypothesis explores, and bench/campaign_fuzz.py runs the long campaigns by seed
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def fake_study_dict(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "fake",
        "models": [
            {
                "name": "m",
                "source": "fake",
                "backend": "fake",
                "levels": ["F16", "Q8_0", "Q4_K_M"],
            }
        ],
        "tasks": [
            {"kind": "mmlu", "per_subject": None, "n": 12},
            {"kind": "arc_challenge", "n": 6},
        ],
        "warmup_runs": 1,
    }
    data.update(over)
    return data


@pytest.fixture
def fake_study() -> Study:
    return parse_study(fake_study_dict())


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def three_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake-backend run of three models of different sizes (tests/multi_model.py), with
    its report written; shared by the tests of the answer across models (read, not changed)."""
    from quantmatrix.report.render import write_report
    from tests.multi_model import run_three_models

    root = tmp_path_factory.mktemp("three-models")
    run = run_three_models(root / "run", root / "cache")
    write_report(run)
    return run
