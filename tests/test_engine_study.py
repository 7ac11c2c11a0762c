"""Real llama.cpp on SmolLM2-135M (the packaged demo model): ladder, study, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import resolve_source
from quantmatrix.runlog import SAMPLES, read_rows
from quantmatrix.verify import verify_run

pytestmark = [pytest.mark.engine, pytest.mark.slow]

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-cache")


def study_file(folder: Path, cache_levels: list[str], n: int) -> Path:
    data = {
        "name": "engine",
        "models": [{"name": MODEL, "source": MODEL, "levels": cache_levels}],
        "tasks": [
            {"kind": "mmlu", "per_subject": None, "n": n // 2},
            {"kind": "arc_challenge", "n": n - n // 2},
        ],
        "warmup_runs": 1,
        "threads": 2,
        "context_length": 1024,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli(*args: str, cache: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "quantmatrix", *args, "--cache", str(cache), "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_ladder_builds_from_a_quantized_source(engine_cache: Path) -> None:
    source = resolve_source(MODEL, MODEL, engine_cache)
    assert source.info.file_type == "Q4_1"
    q8 = build_level(source, "Q8_0", engine_cache, 2)
    q4 = build_level(source, "Q4_K_M", engine_cache, 2)
    f16 = build_level(source, "F16", engine_cache, 2)
    assert (q8.info and q4.info and f16.info) is not None
    assert f16.info.file_type == "F16" and q8.info.file_type == "Q8_0"
    assert f16.reconstructed and q8.reconstructed
    assert f16.info.bits_per_weight > q8.info.bits_per_weight > q4.info.bits_per_weight
    assert "Q8_0" in q8.info.tensor_types
    stamp = q8.path.stat().st_mtime_ns if q8.path else 0
    again = build_level(source, "Q8_0", engine_cache, 2)
    assert again.path and again.path.stat().st_mtime_ns == stamp  # cached, not rebuilt


def test_kill_then_resume_gives_the_rows_of_an_uninterrupted_run(
    tmp_path: Path, engine_cache: Path
) -> None:
    study = study_file(tmp_path, ["Q8_0", "Q4_K_M"], 10)
    whole, part = tmp_path / "whole", tmp_path / "part"
    done = cli("run", str(study), "--out", str(whole), cache=engine_cache)
    assert done.wait(timeout=600) == 0, done.stdout.read() if done.stdout else ""
    proc = cli("run", str(study), "--out", str(part), cache=engine_cache)
    deadline = time.time() + 300
    while time.time() < deadline:
        if len(read_rows(part / SAMPLES).rows) >= 7:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 7 <= len(read_rows(part / SAMPLES).rows) < 20
    rerun = cli("run", str(study), "--out", str(part), cache=engine_cache)
    assert rerun.wait(timeout=600) == 0

    def content(run: Path) -> list[tuple[str, str, str, str]]:
        rows = read_rows(run / SAMPLES).rows
        return sorted((r["variant"], r["task"], r["item"], r["output"]) for r in rows)

    assert len(content(whole)) == 20
    assert content(part) == content(whole)
    report = (part / "report.md").read_text()
    assert "reconstruction of its shipped Q4_1 file" in report
    assert verify_run(part) == ([], [])
