"""The single-stream timing phase on real llama.cpp (the tiny random-weight llama, F16 and
Q8_0): its rows exist for every level and item of the subset, with positive engine timings,
and the decision's speeds are theirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantmatrix.config import parse_study
from quantmatrix.models.ladder import quantize_file
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import RunLog
from tests.tiny_model import write_tiny_llama

pytestmark = [pytest.mark.engine]


def test_timing_rows_exist_and_are_positive_on_the_engine(tmp_path: Path) -> None:
    f16 = write_tiny_llama(tmp_path / "F16.gguf")
    quantize_file(f16, tmp_path / "Q8_0.gguf", "Q8_0", 2)
    study = parse_study({
        "name": "timing-engine",
        "models": [{"name": "tiny", "source": str(f16), "levels": ["F16", "Q8_0"]}],
        "tasks": [{"kind": "mmlu", "per_subject": None, "n": 6}],
        # no line stop: every reply decodes its whole budget's worth of steps or an EOS
        "decoding": {"mc_max_new_tokens": 8, "mc_stop_at_line_end": False},
        "divergence": {"kld": False},
        "warmup_runs": 1,
        "threads": 2,
        "context_length": 512,
        "batch_size": 3,
        "timing": {"multiple_choice": 4, "round_items": 2},
    })  # fmt: skip
    outcome = run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    assert outcome.timed == 2 * 4 and not outcome.failed_variants
    log = RunLog.load(tmp_path / "run")
    assert {(r.variant, r.round) for r in log.timing} == {
        (f"tiny@{lv}", r) for lv in ("F16", "Q8_0") for r in (0, 1)
    }
    for row in log.timing:
        t = row.timing
        assert row.error is None and t.prompt_tokens > 0 and t.wall_s > 0
        assert t.prompt_eval_s is not None and t.prompt_eval_s > 0
        assert t.ttft_s is not None and t.ttft_s > 0
    decoded = [r.timing for r in log.timing if r.timing.decode_tokens]
    assert decoded and all((t.decode_s or 0.0) > 0 for t in decoded)
    _, analysis = write_report(tmp_path / "run")
    for s in analysis.variants:
        assert s.single_stream is not None and s.batch_size == 3
        assert (s.single_stream.native_decode_tps or 0.0) > 0
        assert (s.single_stream.ttft_mean_s or 0.0) > 0
