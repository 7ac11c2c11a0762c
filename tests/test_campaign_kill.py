"""The kill campaign, reduced (bench/campaign_kill.py runs it in full): a study run as the
command line, killed with SIGKILL at seeded points of its phases, resumed each time, ends with
the rows of an uninterrupted run but for timing, ``verify`` clean and no temporary file left.

On the fake backend (slowed down by tests/campaign_cli.py so a kill lands mid-phase):
evaluation, adaptive rounds, the timing phase and the report. On the real engine (SmolLM2):
the ladder build into a fresh cache, batched evaluation, the KL phase and scoring.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import kill_campaign as kc
from tests.kill_campaign import Setup

ROOT = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    return {**os.environ, "PYTHONPATH": path, "QUANTMATRIX_EXTRA_BUFTS": "1"}


def fake_study(folder: Path) -> Path:
    data: dict[str, Any] = {
        "name": "kill-fake",
        "models": [{"name": "m", "source": "fake", "backend": "fake",
                    "levels": ["F16", "Q8_0", "Q4_K_M"]}],
        "tasks": [{"kind": "mmlu", "per_subject": None, "n": 10},
                  {"kind": "arc_challenge", "n": 6}],
        "warmup_runs": 1,
        "sampling": {"mode": "adaptive", "min_items": 8, "max_items": 16, "round": 8},
        "timing": {"multiple_choice": 4, "generation": 0, "round_items": 2, "warmup_runs": 0},
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_kills_on_the_fake_backend_lose_nothing(tmp_path: Path) -> None:
    entry = [sys.executable, "-m", "tests.campaign_cli"]
    setup = Setup(fake_study(tmp_path), tmp_path, entry=entry, env=env(), timeout_s=300)
    ref = kc.reference_run(setup)
    assert ref.total("samples.jsonl") == 48 and ref.total("timing.jsonl") == 12
    assert len(ref.round_starts()) == 2  # two adaptive rounds of 8 items
    counts = {kc.EVAL: 2, kc.ADAPTIVE: 1, kc.TIMING_PHASE: 1, kc.REPORT: 1}
    points = kc.plan_kills(ref, counts, seed=7)
    verdict = kc.run_campaign(setup, ref, points)
    print("\n".join(verdict.summary()))
    assert len(verdict.kills) >= 4, verdict.summary()
    hit = verdict.per_phase()
    assert hit[kc.EVAL] + hit[kc.ADAPTIVE] >= 2 and hit[kc.TIMING_PHASE] + hit[kc.REPORT] >= 1
    assert all(not k.problems for k in verdict.kills)  # readable after every kill
    assert verdict.comparisons[0].compared == 48 and verdict.mismatches == 0
    assert verdict.verify_rc == 0 and verdict.stray == []
    assert verdict.reports_rewritten_equal and verdict.analysis_equal
    assert verdict.ok


def engine_study(folder: Path) -> Path:
    data: dict[str, Any] = {
        "name": "kill-engine",
        "models": [{"name": "smollm2-135m-instruct", "source": "smollm2-135m-instruct",
                    "levels": ["F16", "Q4_K_M"]}],
        "tasks": [{"kind": "mmlu", "per_subject": None, "n": 4},
                  {"kind": "arc_challenge", "n": 4},
                  {"kind": "generation", "per_task": 1, "tasks": ["qa"], "max_new_tokens": 12}],
        "warmup_runs": 1, "threads": 1, "context_length": 1024, "batch_size": 4,
        "decoding": {"mc_max_new_tokens": 8},
        "sampling": {"mode": "adaptive", "min_items": 4, "max_items": 8, "round": 4},
        "timing": {"multiple_choice": 2, "generation": 1, "round_items": 2, "warmup_runs": 0},
        "divergence": {"corpus_tokens": 96, "chunk_tokens": 32},
        "scoring": {"embedding_model": "minilm", "bertscore_backend": "shared"},
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.engine
@pytest.mark.slow
def test_kills_on_the_engine_lose_nothing(tmp_path: Path) -> None:
    setup = Setup(engine_study(tmp_path), tmp_path, env=env(), timeout_s=1200)
    ref = kc.reference_run(setup)
    assert ref.builds(), "the reference built no ladder file into its fresh cache"
    counts = {kc.LADDER: 1, kc.EVAL: 1, kc.KL: 1}
    verdict = kc.run_campaign(setup, ref, kc.plan_kills(ref, counts, seed=3))
    print("\n".join(verdict.summary()))
    assert len(verdict.kills) >= 2, verdict.summary()
    assert verdict.per_phase()[kc.LADDER] >= 1
    assert verdict.mismatches == 0 and verdict.comparisons[2].compared > 0  # KL rows too
    assert verdict.ok, verdict.summary()
