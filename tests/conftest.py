from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantmatrix.config import Study, parse_study


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
