"""A real version-1 run log (tests/fixtures/runlog_v1, written by the code before rows were
typed) read by today's code: sample rows migrate to version 2, the analysis and report come out
byte-identical, a resume appends version-2 rows beside them; unknown versions and rows that are
not of their type stop every reader with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from quantmatrix.backends.base import Backend, GenerationRequest
from quantmatrix.backends.fake import FakeBackend, hashed_letter_probs, hashed_letter_script
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import SAMPLES, LogIntegrityError, RunLog, canonical_json, read_rows
from quantmatrix.runlog.rows import SampleRow
from quantmatrix.tasks.plan import plan_samples
from quantmatrix.verify import verify_run
from tests.conftest import fake_study_dict
from tests.test_generation_pipeline import REFERENCES, LexicalScorer
from tests.test_log_integrity import resealed

FIXTURE = Path(__file__).parent / "fixtures" / "runlog_v1"


def fixture_study() -> Study:
    tasks = [
        {"kind": "mmlu", "per_subject": None, "n": 3},
        {"kind": "arc_challenge", "n": 3},
        {"kind": "generation", "per_task": 1, "max_new_tokens": 64},
    ]
    # batch_size 1, no timing phase: the study as it was before batching and single-stream
    # timing existed (the same config hash)
    study = fake_study_dict(
        tasks=tasks, scoring={"batch_size": 4}, batch_size=1, timing={"enabled": False}
    )
    return parse_study(study)


def factory(variant: Variant, spec: ModelSpec, study: Study) -> Backend:
    """Hashed letters for multiple choice; the reference for generation (a loop at Q4_K_M)."""
    mc = hashed_letter_script(variant.id)

    def reply(request: GenerationRequest) -> str:
        ref = REFERENCES.get(request.prompt)
        if ref is None:
            return mc(request)
        return "the same thing " * 12 if variant.level == "Q4_K_M" else ref

    return FakeBackend(reply, letters=hashed_letter_probs(variant.id))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("samples.jsonl", "variants.jsonl", "scores.jsonl", "manifest.json"):
        shutil.copy(FIXTURE / name, copy / name)
    return copy


def test_the_fixture_is_a_version_1_log_of_this_study() -> None:
    rows = read_rows(FIXTURE / SAMPLES).rows
    assert {r["schema"] for r in rows} == {1} and all("task_kind" not in r for r in rows)
    assert sum(bool(r["scores"]) for r in rows) == 18  # the multiple-choice rows
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    assert manifest["config_hash"] == fixture_study().config_hash()


def test_version_1_rows_migrate_and_the_report_is_byte_identical(run: Path) -> None:
    assert verify_run(run) == ([], [])
    log = RunLog.load(run)
    kinds = {(s.task, s.item): s.kind for s in plan_samples(log.study)}
    assert len(log.samples) == 3 * len(kinds) == 33
    assert all(r.task_kind == kinds[(r.task, r.item)] for r in log.samples)
    write_report(run)
    for name in ("analysis.json", "report.md"):
        assert (run / name).read_bytes() == (FIXTURE / name).read_bytes(), name


def test_a_resumed_version_1_log_takes_version_2_rows(run: Path, tmp_path: Path) -> None:
    lines = (run / SAMPLES).read_text(encoding="utf-8").splitlines()
    (run / SAMPLES).write_text("\n".join(lines[:-2]) + "\n", encoding="utf-8")
    options = RunOptions(run, tmp_path / "cache")
    outcome = run_study(fixture_study(), options, factory, scorer=LexicalScorer())
    assert outcome.evaluated == 2 and outcome.skipped == 31 and outcome.scored == 0
    rows = read_rows(run / SAMPLES).rows
    assert [r["schema"] for r in rows].count(2) == 2 and "scores" not in rows[-1]
    assert verify_run(run)[0] == []
    analysis = write_report(run)[1].json_dict()
    before = json.loads((FIXTURE / "analysis.json").read_text())

    def accuracy(a: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(v["variant"], v["n"], v["accuracy"], v["gen_delta_pct"]) for v in a["variants"]]

    assert accuracy(analysis) == accuracy(before)
    assert analysis["statistics"] == before["statistics"]


def test_an_unknown_version_is_refused_with_file_line_and_version(run: Path) -> None:
    lines = (run / SAMPLES).read_text(encoding="utf-8").splitlines()
    lines[4] = resealed(lines[4], schema=3)
    (run / SAMPLES).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(LogIntegrityError) as caught:
        RunLog.load(run)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("samples.jsonl:5: schema version 3 is unknown (this quantmatrix")


def test_a_row_not_of_its_type_is_refused_with_one_line(run: Path) -> None:
    lines = (run / SAMPLES).read_text(encoding="utf-8").splitlines()
    lines[1] = resealed(lines[1], seconds=1.5)  # a field no sample row has
    (run / SAMPLES).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(LogIntegrityError) as caught:
        RunLog.load(run)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("samples.jsonl:2: not a SampleRow of schema version 2 (seconds:")


def test_a_typed_row_is_written_as_its_canonical_json() -> None:
    row = RunLog.load(FIXTURE).samples[0]
    written = row.as_written()
    assert written["schema"] == 2 and "config" not in written and "schema_version" not in written
    again = SampleRow.model_validate(json.loads(canonical_json(written)))
    assert again == row.model_copy(update={"config": None})
