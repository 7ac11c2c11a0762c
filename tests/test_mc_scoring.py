"""Multiple-choice scoring modes (``decoding.mc_scoring``) through the whole pipeline, on the
scripted fake backend: generation (as published), letters (argmax letter, one token), both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantmatrix.backends.base import Backend
from quantmatrix.backends.fake import FakeBackend, hashed_letter_script
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, default_backend, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import SAMPLES, RunLog, SampleRow, read_rows
from quantmatrix.tasks.multiple_choice import letter_stats, score, score_row
from tests.conftest import fake_study_dict


def _study(mode: str) -> Study:
    return parse_study(fake_study_dict(decoding={"mc_scoring": mode}))


class Recording:
    """The default fake backends, keeping every request they were sent."""

    def __init__(self) -> None:
        self.backends: list[FakeBackend] = []

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        backend = default_backend(variant, spec, study)
        assert isinstance(backend, FakeBackend)
        self.backends.append(backend)
        return backend

    def mc_requests(self) -> list[Any]:
        return [r for b in self.backends for r in b.calls if not r.key.startswith("warmup")]


def _run(tmp_path: Path, mode: str) -> tuple[list[SampleRow], dict[str, Any], Recording]:
    factory = Recording()
    run_study(_study(mode), RunOptions(tmp_path, tmp_path / "cache"), factory)
    _, analysis = write_report(tmp_path)
    written = read_rows(tmp_path / SAMPLES).rows
    assert {r["task_kind"] for r in written} == {"multiple_choice"}
    assert not any("scores" in r for r in written)  # scored on read, from the reply
    return RunLog.load(tmp_path).samples, analysis.json_dict(), factory


def test_generation_mode_asks_for_no_letters(tmp_path: Path) -> None:
    rows, analysis, factory = _run(tmp_path, "generation")
    assert all(r.letter_count == 0 and r.max_tokens == 32 for r in factory.mc_requests())
    assert all(r.letters is None for r in rows)
    assert all(v["letters"] is None for v in analysis["divergence"]["variants"].values())


def test_both_mode_keeps_generation_accuracy_and_adds_letters(tmp_path: Path) -> None:
    rows, analysis, factory = _run(tmp_path, "both")
    requests = factory.mc_requests()
    assert requests and all(r.max_tokens == 32 and r.letter_count >= 3 for r in requests)
    for r in rows:
        scores = score_row(r)
        assert scores["method"] != "letter-prob"  # accuracy still comes from the reply
        letters = r.letters
        assert letters is not None and len(letters.dist) == len(r.input["choices"])
        assert letters.letter_mass == pytest.approx(0.9)
        assert letters.pred == scores["pred"]  # the fake's letters peak on its reply
    div = analysis["divergence"]["variants"]
    assert div["m@F16"]["letters"]["letter_kl_mean"] == 0.0
    assert div["m@F16"]["letters"]["argmax_agreement"] == 1.0
    q4 = div["m@Q4_K_M"]["letters"]
    assert q4["n_compared"] == 18 and q4["letter_kl_mean"] > 0 and q4["argmax_agreement"] < 1
    report = (tmp_path / "report.md").read_text()
    assert "Letter KL (mean)" in report


def test_letters_mode_scores_the_argmax_letter_from_one_token(tmp_path: Path) -> None:
    rows, analysis, factory = _run(tmp_path, "letters")
    requests = factory.mc_requests()
    assert all(r.max_tokens == 1 and not r.stop_at_line_end for r in requests)
    for r in rows:
        scores = score_row(r)
        assert r.letters is not None
        assert scores["method"] == "letter-prob" and scores["parsed"]
        assert scores["pred"] == r.letters.pred
        assert scores["correct"] == (r.letters.pred == r.input["gold"])
    accuracy = {v["level"]: v["accuracy"] for v in analysis["variants"]}
    for level, acc in accuracy.items():
        mine = [r.letters for r in rows if r.level == level]
        assert acc == pytest.approx(sum(m.correct for m in mine if m) / len(mine))


def test_letters_mode_refuses_a_backend_without_letter_probabilities(tmp_path: Path) -> None:
    def factory(variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        return FakeBackend(hashed_letter_script(variant.id))  # no letter script

    options = RunOptions(tmp_path, tmp_path / "cache")
    outcome = run_study(_study("letters"), options, factory)
    assert outcome.failed_variants == ["m@F16", "m@Q8_0", "m@Q4_K_M"]
    assert read_rows(tmp_path / SAMPLES).rows == []


def test_letter_stats_and_unparsed_letter_scores() -> None:
    stats = letter_stats([0.1, 0.5, 0.2, 0.0], "C")
    assert stats["pred"] == "B" and not stats["correct"]
    assert stats["letter_mass"] == pytest.approx(0.8)
    assert stats["dist"] == pytest.approx([0.125, 0.625, 0.25, 0.0])
    assert stats["p_gold"] == pytest.approx(0.25)
    inputs = {"choices": ["w", "x", "y", "z"], "gold": "C", "scoring": "letters"}
    missing = score("C", inputs, None)  # a server that sent no top logprobs for this item
    assert not missing["parsed"] and not missing["correct"]
    assert score("", inputs, [0.0, 0.1, 0.7, 0.1])["correct"]
