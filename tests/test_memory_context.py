"""Memory vs context on the fake backend: the memory phase's rows (one per variant and
context, resumable), the analysis and report, and the decision asked for a context length
(interpolated between measured lengths, refused beyond them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from quantmatrix.backends.fake import FAKE_KV_BYTES_PER_TOKEN, FAKE_MODEL_BYTES
from quantmatrix.cli import app
from quantmatrix.config import parse_study
from quantmatrix.decision import DecisionError
from quantmatrix.decision.context_memory import memory_at
from quantmatrix.decision.recommend import recommend
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import MEMORY, RunLog, read_rows
from tests.conftest import fake_study_dict

MIB = 2**20


def study_dict(**over: Any) -> dict[str, Any]:
    spec = {"name": "m", "source": "fake", "backend": "fake", "levels": ["F16", "Q4_K_M"],
            "kv_cache": ["f16", "q8_0"]}  # fmt: skip
    data = fake_study_dict(models=[spec], batch_size=1, memory={"contexts": [8192, 4096]})
    return {**data, **over}


def fake_bytes(bits: float, kv_factor: float, n_ctx: int) -> int:
    """What the fake probe reports: a model by its nominal bits, the KV cache per token."""
    return round(FAKE_MODEL_BYTES * bits / 16) + round(FAKE_KV_BYTES_PER_TOKEN * kv_factor * n_ctx)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("memory") / "run"
    outcome = run_study(parse_study(study_dict()), RunOptions(out, out.parent / "cache"))
    assert outcome.memory_rows == 4 * 3 and not outcome.memory_failed
    write_report(out)
    return out


def test_one_row_per_variant_and_context_and_a_rerun_measures_nothing(run: Path) -> None:
    rows = RunLog.load(run).memory
    assert sorted({r.n_ctx for r in rows}) == [2048, 4096, 8192]  # the study's own length too
    q8 = {r.n_ctx: r for r in rows if r.variant == "m@Q4_K_M+kv-q8_0"}
    assert q8[8192].kv_cache == "q8_0" and q8[8192].level == "Q4_K_M+kv-q8_0"
    assert q8[8192].peak_bytes == fake_bytes(4.5, 34 / 64, 8192)
    again = run_study(parse_study(study_dict()), RunOptions(run, run.parent / "cache"))
    assert again.memory_rows == 0 and again.evaluated == 0
    assert len(read_rows(run / MEMORY).rows) == 12


def test_the_analysis_and_report_show_memory_vs_context(run: Path) -> None:
    analysis = write_report(run)[1]
    f16 = analysis.summary("m@F16")
    assert f16 is not None and f16.context_memory is not None
    assert [p.n_ctx for p in f16.context_memory] == [2048, 4096, 8192]
    report = (run / "report.md").read_text()
    assert "## Memory vs context" in report
    assert "| m@Q4_K_M+kv-q8_0 | q8_0 (flash attn) | 8192 |" in report


def test_memory_between_measured_contexts_is_interpolated_and_beyond_them_refused(
    run: Path,
) -> None:
    analysis = write_report(run)[1]
    summary = analysis.summary("m@F16")
    assert summary is not None
    mid = memory_at(summary, 6144)
    assert mid is not None and mid.basis == "interpolated between 4096 and 8192 tokens"
    assert mid.bytes == pytest.approx(fake_bytes(16, 1, 6144), abs=1)
    low = memory_at(summary, 1024)
    assert low is not None and low.bytes == fake_bytes(16, 1, 2048)
    assert "upper bound" in low.basis
    with pytest.raises(DecisionError) as caught:
        memory_at(summary, 16384)
    assert "beyond the largest measured for m@F16 (8192 tokens)" in str(caught.value)


def test_recommend_at_a_context_keeps_the_pairs_that_fit(run: Path) -> None:
    analysis = write_report(run)[1]
    budget_gb = 250 * MIB / 1e9  # at 8192 tokens: F16 with an f16 KV cache needs more
    rec = recommend(analysis, budget_gb, max_tier="unacceptable", basis="point", context=8192)
    picked = [p.variant for p in [rec.best, *rec.runners_up] if p is not None]
    assert sorted(picked) == ["m@F16+kv-q8_0", "m@Q4_K_M", "m@Q4_K_M+kv-q8_0"]
    tight = recommend(analysis, 60 * MIB / 1e9, max_tier="unacceptable", basis="point")
    assert tight.best is not None and tight.best.variant == "m@Q4_K_M+kv-q8_0"  # at 2048
    assert not tight.runners_up


def test_the_matrix_uses_the_memory_phase_at_the_study_context(run: Path) -> None:
    analysis = write_report(run)[1]
    from quantmatrix.decision.memory import memory_rows

    row = next(r for r in memory_rows(analysis) if r.variant == "m@F16+kv-q8_0")
    assert row.measured_bytes == fake_bytes(16, 34 / 64, 2048)
    assert row.source == "memory phase at 2048 tokens: fake"


def test_the_cli_answers_for_a_context_and_refuses_in_one_line(run: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["recommend", str(run), "--memory", "0.2GB", "--context", "8192",
                             "--basis", "point", "--max-tier", "unacceptable"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("run m@Q4_K_M+kv-q8_0:")  # the only pair under 0.2 GB
    far = runner.invoke(app, ["recommend", str(run), "--context", "32768"])
    assert far.exit_code == 2
    assert far.output.count("\n") == 1 and "add 32768 to memory.contexts" in far.output


def test_a_run_without_a_memory_phase_refuses_context(tmp_path: Path) -> None:
    data = study_dict()
    del data["memory"]
    out = tmp_path / "run"
    assert run_study(parse_study(data), RunOptions(out, tmp_path / "cache")).memory_rows == 0
    assert not (out / MEMORY).exists() or not read_rows(out / MEMORY).rows
    with pytest.raises(DecisionError) as caught:
        recommend(write_report(out)[1], 1.0, context=8192)
    assert "measured no memory vs context; add memory: {contexts:" in str(caught.value)
