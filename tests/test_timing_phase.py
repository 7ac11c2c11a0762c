"""The single-stream timing phase (pipeline/timing.py) on the scripted fake backend: rows, the
round order across levels, resume after a kill mid-phase, the analysis taking its figures over
the evaluation's batched ones, and a study without the phase analysed as before."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from quantmatrix.backends.base import Backend, GenerationRequest, GenerationResult
from quantmatrix.backends.fake import FakeBackend, hashed_letter_probs, hashed_letter_script
from quantmatrix.config import ConfigError, ModelSpec, Study, parse_study
from quantmatrix.decision.cost import usd_per_million
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.timing import timing_subset
from quantmatrix.report.render import write_report
from quantmatrix.runlog import TIMING, RunLog, read_rows
from quantmatrix.tasks.plan import plan_samples
from quantmatrix.verify import verify_run
from tests.conftest import fake_study_dict

FIXTURE = Path(__file__).parent / "fixtures" / "runlog_v1"
LEVELS = ["F16", "Q8_0", "Q4_K_M"]  # the fake study's, highest precision first


class Recorder:
    """A factory of fake backends that records, in order, every request of the timing phase's
    backends (those opened with batch size 1) with its variant; ``die_after`` timing requests
    it raises as a killed process would stop (not a BackendError: nothing catches it)."""

    def __init__(self, die_after: int | None = None, batch_tps: float = 50.0) -> None:
        self.calls: list[tuple[str, str]] = []  # (variant, request key), timing backends only
        self.opened: list[str] = []
        self.batch_sizes: set[int] = set()
        self.die_after = die_after
        self.batch_tps = batch_tps

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        timing = study.batch_size == 1  # the evaluation's study here has batch_size 4
        backend = _Fake(variant, study.batch_size, 20.0 if timing else self.batch_tps)
        if timing:
            self.opened.append(variant.id)
            backend.on_generate = lambda reqs: self._record(variant.id, reqs)
        return backend

    def _record(self, variant: str, reqs: Sequence[GenerationRequest]) -> None:
        assert len(reqs) == 1 and reqs[0].batch_group is None  # one request alone per call
        if reqs[0].key.startswith("warmup"):
            self.calls.append((variant, "warmup"))
            return
        if self.die_after is not None and sum(k != "warmup" for _, k in self.calls) >= (
            self.die_after
        ):
            raise KeyboardInterrupt("killed")
        self.calls.append((variant, reqs[0].key))


class _Fake(FakeBackend):
    """Hashed answers; info names the batch size, as the embedded engine's does."""

    def __init__(self, variant: Variant, batch_size: int, decode_tps: float) -> None:
        letter = hashed_letter_script(variant.id)

        def reply(request: GenerationRequest) -> str:  # a few tokens: a decode time
            return f"The answer is {letter(request)}"

        super().__init__(reply, decode_tps=decode_tps, letters=hashed_letter_probs(variant.id))
        self.batch_size = batch_size
        self.on_generate: Any = None

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
        if self.on_generate is not None:
            self.on_generate(requests)
        yield from super().generate(requests)

    def info(self) -> dict[str, Any]:
        return {"engine": "fake", "version": "1", "batch_size": self.batch_size}


def _study(**over: Any) -> Study:
    return parse_study(fake_study_dict(**over))


def _keys(study: Study) -> list[str]:
    return [f"{s.task}|{s.item}" for s in timing_subset(plan_samples(study), study.timing)]


def test_the_phase_writes_one_row_per_item_and_level(tmp_path: Path, cache: Path) -> None:
    study = _study()
    outcome = run_study(study, RunOptions(tmp_path, cache), Recorder())
    assert outcome.timed == 8 * 3 and not outcome.failed_variants
    rows = read_rows(tmp_path / TIMING).rows
    assert len(rows) == 24 and {r["schema"] for r in rows} == {2}  # 2: letters kept
    assert {(r["variant"], f"{r['task']}|{r['item']}") for r in rows} == {
        (f"m@{lv}", k) for lv in LEVELS for k in _keys(study)
    }
    assert all(r["timing"]["decode_s"] > 0 and r["timing"]["ttft_s"] > 0 for r in rows)
    assert verify_run(tmp_path) == ([], [])
    again = run_study(study, RunOptions(tmp_path, cache), Recorder())
    assert again.timed == 0 and len(read_rows(tmp_path / TIMING).rows) == 24


def test_the_subset_is_the_plans_first_items_of_each_kind() -> None:
    tasks = [
        {"kind": "generation", "per_task": 1, "max_new_tokens": 16},
        {"kind": "mmlu", "per_subject": None, "n": 12},
    ]
    study = _study(tasks=tasks, timing={"multiple_choice": 3, "generation": 2})
    plan = plan_samples(study)
    chosen = timing_subset(plan, study.timing)
    gen = [s for s in plan if s.kind == "generation"][:2]
    mc = [s for s in plan if s.kind == "multiple_choice"][:3]
    assert [(s.task, s.item) for s in chosen] == [(s.task, s.item) for s in (*gen, *mc)]


def test_rounds_visit_every_level_in_a_fixed_serpentine_order(tmp_path: Path, cache: Path) -> None:
    study = _study()
    record = Recorder()
    run_study(study, RunOptions(tmp_path, cache), record)
    first, second = _keys(study)[:4], _keys(study)[4:]
    expected: list[tuple[str, str]] = []
    for levels, items in ((LEVELS, first), (LEVELS[::-1], second)):
        for i, lv in enumerate(levels):
            warm = [] if (items is second and i == 0) else [(f"m@{lv}", "warmup")]
            expected += warm + [(f"m@{lv}", k) for k in items]
    assert record.calls == expected
    # Q4_K_M ends round 0 and begins round 1 on the backend already open
    assert record.opened == ["m@F16", "m@Q8_0", "m@Q4_K_M", "m@Q8_0", "m@F16"]
    rows = read_rows(tmp_path / TIMING).rows
    assert [(r["variant"], f"{r['task']}|{r['item']}") for r in rows] == [
        c for c in expected if c[1] != "warmup"
    ]
    assert [r["round"] for r in rows] == [0] * 12 + [1] * 12


def test_a_phase_killed_midway_resumes_with_what_is_left(tmp_path: Path, cache: Path) -> None:
    study = _study()
    with pytest.raises(KeyboardInterrupt):
        run_study(study, RunOptions(tmp_path, cache), Recorder(die_after=10))
    before = read_rows(tmp_path / TIMING).rows
    assert len(before) == 10
    with (tmp_path / TIMING).open("ab") as fh:
        fh.write(b'{"variant": "m@Q8_0", "torn')  # killed mid-write
    record = Recorder()
    outcome = run_study(study, RunOptions(tmp_path, cache), record)
    assert outcome.timed == 14 and outcome.evaluated == 0
    after = read_rows(tmp_path / TIMING).rows
    assert after[:10] == before and len(after) == 24
    whole = tmp_path / "whole"
    run_study(study, RunOptions(whole, cache), Recorder())

    def order(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(r["variant"], r["task"], r["item"], r["round"]) for r in rows]

    assert order(after) == order(read_rows(whole / TIMING).rows)
    # killed at Q4_K_M's third item of round 0: that visit resumes there, warmed up first
    assert record.calls[:2] == [("m@Q4_K_M", "warmup"), ("m@Q4_K_M", _keys(study)[2])]
    assert verify_run(tmp_path) == ([], [])


def test_the_decision_takes_single_stream_figures_and_keeps_batched_beside(
    tmp_path: Path, cache: Path
) -> None:
    run_study(_study(), RunOptions(tmp_path, cache), Recorder(batch_tps=50.0))
    _, analysis = write_report(tmp_path)
    body = json.loads((tmp_path / "analysis.json").read_text())
    for s, dumped in zip(analysis.variants, body["variants"], strict=True):
        assert s.timing.native_decode_tps == pytest.approx(50.0)  # the evaluation's rows
        assert s.single_stream is not None and s.batch_size == 4
        assert s.single_stream.native_decode_tps == pytest.approx(20.0)
        assert s.speed is s.single_stream and s.speed_basis == "single-stream"
        assert dumped["single_stream"]["native_decode_tps"] == pytest.approx(20.0)
    rate = analysis.cost_per_hour or 0.0
    for row in body["decision"]["variants"]:
        assert row["decode_tps"] == pytest.approx(20.0)
        assert row["usd_per_m"] == pytest.approx(usd_per_million(20.0, rate))
        assert row["speed_basis"] == "single-stream" and row["batch_size"] == 4
        assert row["batch_decode_tps"] == pytest.approx(50.0)
    report = (tmp_path / "report.md").read_text()
    assert "**Speed figures are single-stream:**" in report
    assert "Speed figures are batched" not in report
    assert "| 20.0 |" in report and "50.0 at batch 4" in report
    assert "Decode tok/s (single-stream)" in report and "$/1M (single-stream)" in report


def test_single_stream_ttft_and_series_come_from_the_timing_rows(
    tmp_path: Path, cache: Path
) -> None:
    run_study(_study(), RunOptions(tmp_path, cache), Recorder())
    log = RunLog.load(tmp_path)
    _, analysis = write_report(tmp_path)
    for s in analysis.variants:
        mine = [r.timing.ttft_s or 0.0 for r in log.timing if r.variant == s.variant]
        assert s.single_stream is not None and len(mine) == 8
        assert s.single_stream.ttft_mean_s == pytest.approx(sum(mine) / 8)
    series = {(t.level, t.ttft_s.n) for t in analysis.statistics.timing}
    assert series == {(lv, 8) for lv in LEVELS}  # 8 timing rows, not 18 evaluation rows


def test_a_study_without_the_phase_reads_and_renders_as_before(tmp_path: Path, cache: Path) -> None:
    off = _study(timing={"enabled": False})
    run_study(off, RunOptions(tmp_path, cache), Recorder())
    assert not (tmp_path / TIMING).exists() or not read_rows(tmp_path / TIMING).rows
    _, analysis = write_report(tmp_path)
    body = json.loads((tmp_path / "analysis.json").read_text())
    assert all("single_stream" not in v for v in body["variants"])
    assert all("speed_basis" not in v for v in body["decision"]["variants"])
    assert all(s.speed is s.timing and s.speed_basis == "at batch 4" for s in analysis.variants)
    report = (tmp_path / "report.md").read_text()
    assert "Speed figures are batched" in report and "Speed basis" not in report
    assert "Speed figures are single-stream" not in report and "(single-stream)" not in report


def test_timing_config_keeps_older_hashes_and_refuses_typos() -> None:
    manifest = json.loads((FIXTURE / "manifest.json").read_text())  # written before the phase
    config = {**manifest["config"], "batch_size": 1}
    old = parse_study({**config, "timing": {"enabled": False}})
    assert old.config_hash() == manifest["config_hash"]
    assert parse_study(config).config_hash() != manifest["config_hash"]  # it measures more
    with pytest.raises(ConfigError, match=r"unknown field 'timing\.items'"):
        parse_study(fake_study_dict(timing={"items": 3}))
    with pytest.raises(ConfigError, match=r"timing\.round_items"):
        parse_study(fake_study_dict(timing={"round_items": 0}))
