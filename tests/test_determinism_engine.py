"""The determinism check on real llama.cpp (the tiny random-weight llama with SmolLM2's
tokenizer): whole batch groups of 4 asked again on a fresh model and context at another thread
count give the logged answers bit for bit, texts and letter probabilities, under adaptive rounds
and with generation items; the re-run really is fresh and at the other thread count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from quantmatrix.analysis.build import analyze
from quantmatrix.backends.base import Backend
from quantmatrix.config import ModelSpec, Study, load_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, default_backend, run_study
from quantmatrix.runlog import RunLog
from tests.test_generation_pipeline import LexicalScorer
from tests.tiny_model import write_tiny_llama

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def study_file(folder: Path, source: Path) -> Path:
    data = {
        "name": "determinism-engine",
        "models": [{"name": "tiny", "source": str(source), "levels": ["F16", "Q8_0"]}],
        "tasks": [
            {"kind": "mmlu", "per_subject": None, "n": 10},
            {"kind": "arc_challenge", "n": 6},
            {"kind": "generation", "per_task": 1, "tasks": ["summarization"], "max_new_tokens": 24},
        ],
        "decoding": {"mc_max_new_tokens": 6},
        "divergence": {"kld": False},
        "timing": {"enabled": False},
        "sampling": {"mode": "adaptive", "min_items": 6, "max_items": 16, "round": 5},
        "warmup_runs": 1,
        "threads": 2,
        "context_length": 512,
        "batch_size": 4,
        "determinism": {"items": 6},
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Opened:
    """The default factory, recording each backend's thread count and variant."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, Any]] = []

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        self.opened.append((variant.id, study.threads))
        return default_backend(variant, spec, study)


def test_fresh_contexts_at_another_thread_count_repeat_the_logged_answers(tmp_path: Path) -> None:
    source = write_tiny_llama(tmp_path / "tiny.gguf")
    study = load_study(study_file(tmp_path, source))
    factory = Opened()
    run = tmp_path / "run"
    out = run_study(study, RunOptions(run, tmp_path / "cache"), factory, LexicalScorer())
    assert not out.failed_variants
    log = RunLog.load(run)
    rows = log.determinism
    assert out.rechecked == len(rows) > 0
    assert ("tiny@Q8_0", 1) in factory.opened and ("tiny@F16", 1) in factory.opened
    assert {r.threads for r in rows} == {2} and {r.rerun_threads for r in rows} == {1}
    kinds = {r.task_kind for r in rows}
    assert kinds == {"multiple_choice", "generation"}
    assert {r.group_size for r in rows} <= {1, 2, 3, 4} and 4 in {r.group_size for r in rows}
    assert all(r.error is None for r in rows)
    assert all(r.letter_probs is not None for r in rows if r.task_kind == "multiple_choice")
    assert all(r.letters_max_abs_diff == 0.0 for r in rows if r.task_kind == "multiple_choice")
    for r in rows:  # every answer repeated bit for bit (the engine is deterministic here)
        assert r.same_output and r.same_letters is not False, (r.variant, r.item, r.output)
    check = analyze(log).determinism
    assert check is not None and check.all_same
    assert [v.variant for v in check.variants] == ["tiny@F16", "tiny@Q8_0"]
