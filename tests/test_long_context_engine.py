"""The long-context probe on real llama.cpp: window-by-window rows equal one ``eval``'s, the
phase on a tiny ladder (the baseline exactly 0, a coarser level further off, the cap at the
model's training context), and the probes of a whole study on SmolLM2-135M (short buckets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantmatrix.config import parse_study
from quantmatrix.engine.load import open_for_eval
from quantmatrix.models.ladder import quantize_file
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import RunLog
from quantmatrix.scoring.logits import token_logits
from quantmatrix.scoring.windows import LlamaWindows
from tests.tiny_model import write_tiny_llama

pytestmark = [pytest.mark.engine]


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-long")
    f16 = write_tiny_llama(folder / "F16.gguf")
    paths = {"F16": f16}
    for level in ("Q8_0", "Q2_K"):
        paths[level] = folder / f"{level}.gguf"
        quantize_file(f16, paths[level], level, 2)
    return paths


def test_window_rows_equal_one_eval(ladder: dict[str, Path]) -> None:
    tokens = list(range(1000, 1300))
    whole = open_for_eval(ladder["Q8_0"], 512, 2, True, n_batch=128)
    try:
        expected = token_logits(whole, tokens)
    finally:
        whole.close()
    llm = open_for_eval(ladder["Q8_0"], 512, 2, False, n_batch=128)
    try:
        model = LlamaWindows(llm)
        got = np.concatenate(list(model.windows(tokens, 128)))
        again = np.concatenate(list(model.windows(tokens, 128)))  # the cache starts empty
        assert model.context_limit() == 2048
        with pytest.raises(ValueError, match="exceeds the context's batch"):
            next(model.windows(tokens, 256))
    finally:
        llm.close()
    assert got.shape == expected.shape == (300, expected.shape[1])
    assert np.array_equal(got, expected) and np.array_equal(got, again)


def tiny_study(ladder: dict[str, Path], buckets: list[int]) -> dict[str, object]:
    return {
        "name": "long-engine",
        "models": [{"name": "tiny", "source": str(ladder["F16"]),
                    "levels": ["F16", "Q8_0", "Q2_K"]}],
        "tasks": [{"kind": "mmlu", "per_subject": None, "n": 2}],
        "decoding": {"mc_max_new_tokens": 2},
        "divergence": {"kld": False},
        "timing": {"enabled": False},
        "warmup_runs": 0,
        "threads": 2,
        "batch_size": 1,
        "long_context": {"buckets": buckets, "documents": 2},
    }  # fmt: skip


def test_the_phase_on_a_tiny_ladder(ladder: dict[str, Path], tmp_path: Path) -> None:
    study = parse_study(tiny_study(ladder, [64, 256, 4096]))
    outcome = run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    assert outcome.long_context == 3 * 2 * 3
    log = RunLog.load(tmp_path / "run")
    rows = log.long_context
    # the last bucket is cut at the model's training context (2048)
    assert {(r.start, r.end) for r in rows} == {(0, 64), (64, 256), (256, 2048)}
    assert all(r.document_tokens == 2048 and r.n_tokens == r.end - r.start for r in rows)
    base = [r for r in rows if r.level == "F16"]
    assert all(r.kl_sum == 0.0 and r.same_top == r.n_tokens for r in base)

    def mean(level: str) -> float:
        mine = [r for r in rows if r.level == level]
        return sum(r.kl_sum for r in mine) / sum(r.n_tokens for r in mine)

    assert 0 < mean("Q8_0") < mean("Q2_K")
    _, analysis = write_report(tmp_path / "run")
    assert analysis.probes is not None and analysis.probes.long_context is not None
    assert analysis.probes.long_context.cap == 2048
    again = run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    assert again.long_context == 0
    # the control: each later bucket's first positions again from an empty cache
    assert {(r.bucket, r.restart_tokens) for r in rows} == {(0, 0), (1, 192), (2, 512)}
    assert all(r.restart_kl_sum == 0.0 for r in base)
    assert all(r.restart_kl_sum > 0 for r in rows if r.level == "Q2_K" and r.bucket)


def test_buckets_shorter_than_a_window(ladder: dict[str, Path], tmp_path: Path) -> None:
    study = parse_study(tiny_study(ladder, [32, 128]))
    outcome = run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    assert outcome.long_context == 3 * 2 * 2
    rows = RunLog.load(tmp_path / "run").long_context
    assert {(r.start, r.end, r.n_tokens) for r in rows} == {(0, 32, 32), (32, 128, 96)}


@pytest.mark.slow
def test_the_probes_of_a_study_on_smollm2(tmp_path: Path) -> None:
    """Both context-length probes and the batch comparison on a real instruct model."""
    study = parse_study({
        "name": "long-smollm2",
        "models": [{"name": "smollm2", "source": "smollm2-135m-instruct",
                    "levels": ["Q8_0", "Q4_K_M"]}],
        "tasks": [{"kind": "mmlu", "per_subject": None, "n": 4}],
        "decoding": {"mc_max_new_tokens": 4},
        "divergence": {"kld": False},
        "timing": {"multiple_choice": 4, "generation": 0, "warmup_runs": 0},
        "warmup_runs": 0,
        "threads": 2,
        "batch_size": 2,
        "context_length": 1100,
        "long_context": {"buckets": [256, 1024], "documents": 2, "mc_items": 4},
    })  # fmt: skip
    run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    log = RunLog.load(tmp_path / "run")
    assert len(log.samples) == 2 * 4 and len(log.many_shot) == 2 * 2 * 4
    for r in log.many_shot:  # the character estimate put every prompt in its bucket
        assert r.error is None
        assert r.input["bucket_start"] <= r.timing.prompt_tokens < r.input["bucket_end"]
    _, analysis = write_report(tmp_path / "run")
    assert analysis.probes is not None
    lc, batch = analysis.probes.long_context, analysis.probes.batch
    assert lc is not None and batch is not None
    q4 = next(lv for lv in lc.levels if lv.level == "Q4_K_M")
    assert [b.documents for b in q4.buckets] == [2, 2] and q4.buckets[0].kl.value > 0
    assert q4.trend is not None and q4.trend.change.n == 2
    ms = next(lv for lv in lc.many_shot if lv.level == "Q4_K_M")
    assert [b.accuracy.n for b in ms.buckets] == [4, 4] and ms.trend is not None
    assert [(lv.batch, lv.pairs) for lv in batch.levels] == [(2, 4), (2, 4)]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Context length" in report and "## Batch sensitivity" in report
