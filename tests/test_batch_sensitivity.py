"""Batch sensitivity: the timing phase's single-stream answers against the batched evaluation's,
on the fake backend with scripted batch differences, on the Ollama stand-in with requests in
flight, and timing rows of version 1 read back with no letters."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.probes_model import BatchSensitivity
from quantmatrix.backends.base import Backend, GenerationRequest
from quantmatrix.backends.fake import FakeBackend, hashed_letter_probs, hashed_letter_script
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import TIMING, RunLog, read_rows
from quantmatrix.tasks.multiple_choice import score
from tests.conftest import fake_study_dict
from tests.ollama_standin import OllamaStandIn
from tests.test_log_integrity import resealed


def flipped(request: GenerationRequest) -> bool:
    """The items a batched decode answers differently (about a third), at Q4_K_M only."""
    return int(hashlib.sha256(request.key.encode()).hexdigest(), 16) % 3 == 0


class Factory:
    """Fake backends at batch 4; at Q4_K_M a batched request of a ``flipped`` item gets another
    letter, and half of letter B's probability moved to A."""

    def __init__(self, differ: bool) -> None:
        self.differ = differ

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        reply, probs = hashed_letter_script(variant.id), hashed_letter_probs(variant.id)
        if not (self.differ and variant.level == "Q4_K_M"):
            return FakeBackend(reply, letters=probs, batch_size=study.batch_size)

        def batched(r: GenerationRequest) -> str:
            letter = reply(r)
            return ("A" if letter != "A" else "B") if flipped(r) else letter

        def batched_probs(r: GenerationRequest) -> list[float]:
            p = list(probs(r))
            if flipped(r):
                moved = p[1] / 2
                p[0], p[1] = p[0] + moved, p[1] - moved
            return p

        return FakeBackend(reply, letters=probs, batch_size=study.batch_size, batched=batched,
                           batched_letters=batched_probs)  # fmt: skip


def analysis_of(tmp_path: Path, differ: bool, **over: object) -> Analysis:
    study = parse_study(fake_study_dict(**over))
    run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"), Factory(differ))
    return write_report(tmp_path / "run")[1]


def batches(a: Analysis) -> BatchSensitivity:
    assert a.probes is not None and a.probes.batch is not None
    return a.probes.batch


def test_identical_answers_at_batch_4_and_1(tmp_path: Path) -> None:
    batch = batches(analysis_of(tmp_path, differ=False))
    assert [lv.level for lv in batch.levels] == ["F16", "Q8_0", "Q4_K_M"]
    for lv in batch.levels:
        assert (lv.batch, lv.basis, lv.pairs) == (4, "decoded together", 8)
        assert lv.identical.value == 1.0 and lv.identical.n == 8
        change = lv.change_pp
        assert change is not None and change.low is not None and change.high is not None
        assert change.value == 0.0 and change.low < 0 < change.high
        assert lv.letter_max_diff == 0.0 and lv.letter_pairs == 8 and lv.differing == ()


def test_scripted_batch_differences_are_counted(tmp_path: Path) -> None:
    batch = batches(analysis_of(tmp_path, differ=True))
    log = RunLog.load(tmp_path / "run")
    q4 = next(lv for lv in batch.levels if lv.level == "Q4_K_M")
    timed = {f"{r.task}|{r.item}": r for r in log.timing if r.variant == "m@Q4_K_M"}
    rows = {r.item_key: r for r in log.samples if r.variant == "m@Q4_K_M"}
    keys = sorted(timed)
    moved = [k for k in keys if flipped(GenerationRequest(key=k, prompt="", max_tokens=1))]
    assert moved and len(moved) < len(keys)
    assert q4.pairs == 8 and q4.identical.value == pytest.approx(1 - len(moved) / 8)
    assert set(q4.differing) == set(moved)
    letters = [(timed[k].letters, rows[k].letters) for k in moved]
    half_b = max(one.probs[1] / 2 for one, _ in letters if one is not None)
    assert q4.letter_max_diff == pytest.approx(half_b) and half_b > 0

    def correct(output: str, k: str) -> bool:
        return bool(score(output, rows[k].input)["correct"])

    expected = sum(correct(rows[k].output, k) - correct(timed[k].output, k) for k in keys)
    assert q4.change_pp is not None and q4.change_pp.value == pytest.approx(100 * expected / 8)
    others = [lv for lv in batch.levels if lv.level != "Q4_K_M"]
    assert all(lv.identical.value == 1.0 for lv in others)
    report = (tmp_path / "run" / "report.md").read_text()
    line = next(ln for ln in report.splitlines() if ln.startswith("| m@Q4_K_M | 4 decoded"))
    assert f"{8 - len(moved)}/8" in line and f"{half_b:.3g} (8 items)" in line


def test_no_section_at_batch_1(tmp_path: Path) -> None:
    a = analysis_of(tmp_path, differ=True, batch_size=1)
    assert a.probes is None  # nothing decoded together: nothing to compare
    assert "## Batch sensitivity" not in (tmp_path / "run" / "report.md").read_text()


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    server = OllamaStandIn(models={"tiny:q8_0": 1, "tiny:q4_K_M": 1}).start()
    yield server
    server.stop()


def test_a_server_with_requests_in_flight(tmp_path: Path, standin: OllamaStandIn) -> None:
    model = {"name": "tiny", "backend": "ollama", "endpoint": standin.url, "source": "tiny",
             "levels": ["Q8_0", "Q4_K_M"], "in_flight": 3}  # fmt: skip
    study = parse_study(fake_study_dict(models=[model], tasks=[{"kind": "mmlu", "n": 6}]))
    run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"))
    _, a = write_report(tmp_path / "run")
    assert a.probes is not None and a.probes.batch is not None
    for lv in a.probes.batch.levels:
        assert (lv.batch, lv.basis, lv.pairs) == (3, "in flight", 6)
        assert lv.identical.value == 1.0  # the stand-in answers alike however it is asked


def test_version_1_timing_rows_read_with_no_letters(tmp_path: Path) -> None:
    study = parse_study(fake_study_dict())
    run_study(study, RunOptions(tmp_path / "run", tmp_path / "cache"), Factory(differ=False))
    path = tmp_path / "run" / TIMING
    rows = read_rows(path).rows
    old = [{k: v for k, v in r.items() if k not in ("letters", "sha256")} | {"schema": 1}
           for r in rows]  # fmt: skip
    path.write_text("".join(resealed(json.dumps(r)) + "\n" for r in old))
    log = RunLog.load(tmp_path / "run")
    assert len(log.timing) == len(rows) and all(r.letters is None for r in log.timing)
    lv = batches(write_report(tmp_path / "run")[1]).levels[0]
    assert lv.pairs == 8 and lv.letter_pairs == 0 and lv.letter_max_diff is None
