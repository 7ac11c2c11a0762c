"""A study on the Ollama backend, against the local stand-in server (tests/ollama_standin.py):
a missing tag fails its variant with one line while the others go on; a rerun resumes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quantmatrix.config import ConfigError, parse_study
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.runlog import SAMPLES, VARIANTS, RunLog, read_rows
from quantmatrix.tasks.multiple_choice import score_row
from tests.conftest import fake_study_dict
from tests.ollama_standin import OllamaStandIn


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    server = OllamaStandIn(models={"tiny:q4_K_M": 300_000_000}).start()
    yield server
    server.stop()


def ollama_study(url: str) -> dict[str, object]:
    model = {
        "name": "tiny",
        "backend": "ollama",
        "endpoint": url,
        "source": "tiny",
        "levels": ["Q8_0", "Q4_K_M"],
    }
    return fake_study_dict(models=[model], tasks=[{"kind": "arc_challenge", "n": 5}])


def test_missing_tag_fails_its_variant_and_a_rerun_resumes(
    tmp_path: Path, cache: Path, standin: OllamaStandIn
) -> None:
    study = parse_study(ollama_study(standin.url))
    assert study.models[0].server_model("Q8_0") == "tiny:q8_0"
    opts = RunOptions(tmp_path, cache)
    first = run_study(study, opts)
    assert first.failed_variants == ["tiny@Q8_0"]
    rows = read_rows(tmp_path / SAMPLES).rows
    assert {r["variant"] for r in rows} == {"tiny@Q4_K_M"} and len(rows) == 5
    assert all(score_row(r)["pred"] == "B" for r in RunLog.load(tmp_path).samples)
    assert rows[0]["timing"]["decode_s"] is not None  # native timing from Ollama's counters
    memory = read_rows(tmp_path / VARIANTS).rows[0]["memory"]
    assert memory["peak_bytes"] == 300_000_000
    standin.registry["tiny:q8_0"] = 500_000_000  # now pullable
    again = run_study(study, opts)
    assert again.failed_variants == [] and again.evaluated == 5 and again.skipped == 5
    assert len(read_rows(tmp_path / SAMPLES).rows) == 10


def test_openai_backend_needs_endpoint_and_tags() -> None:
    model = {"name": "m", "backend": "openai", "source": "x", "levels": ["Q8_0"]}
    with pytest.raises(ConfigError, match="needs an endpoint"):
        parse_study(fake_study_dict(models=[model]))
    with pytest.raises(ConfigError, match="needs tags"):
        parse_study(fake_study_dict(models=[{**model, "endpoint": "http://127.0.0.1:1/v1"}]))
