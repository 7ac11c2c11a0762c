"""Generation tasks through the whole pipeline on the fake backend, with a lexical scorer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantmatrix.backends.base import Backend, GenerationRequest
from quantmatrix.backends.fake import FakeBackend
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.data.generation import load_generation_items
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.score import score_run
from quantmatrix.report.render import write_report
from quantmatrix.runlog import SCORES, read_rows
from quantmatrix.scoring import text_metrics
from tests.conftest import fake_study_dict

REFERENCES = {i.prompt: i.reference for i in load_generation_items(per_task=2)}


class LexicalScorer:
    """Stands in for the model-based scorer: the real lexical metrics, ROUGE-L for the rest."""

    embedding_model = bertscore_model = "lexical-stand-in"
    bertscore_layer = 0
    bertscore_backend = "none"

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def score(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> list[dict[str, float]]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("killed mid-scoring")
        out = []
        for cand, ref in pairs:
            rouge = text_metrics.rouge_l_f1(cand, ref)
            out.append({
                "rouge_l": rouge, "bleu": text_metrics.bleu(cand, ref), "bertscore_f1": rouge,
                "coherence": rouge, "exact_match": text_metrics.exact_match(cand, ref),
                "length_ratio": text_metrics.length_ratio(cand, ref),
                "repetition": text_metrics.repetition(cand),
                "key_avg": text_metrics.key_metric_average(rouge, rouge, rouge),
            })  # fmt: skip
        return out


def factory(variant: Variant, spec: ModelSpec, study: Study) -> Backend:
    def reply(request: GenerationRequest) -> str:
        ref = REFERENCES.get(request.prompt)
        if ref is None:
            return "A"
        if variant.level == "Q4_K_M":
            return "the same thing " * 12  # a degenerate loop
        return ref

    return FakeBackend(reply)


@pytest.fixture
def gen_study() -> Study:
    data = fake_study_dict(
        tasks=[
            {"kind": "mmlu", "per_subject": None, "n": 4},
            {"kind": "generation", "per_task": 2, "max_new_tokens": 64},
        ],
        scoring={"batch_size": 4},
    )
    return parse_study(data)


def test_generation_is_scored_and_drives_the_tier(
    tmp_path: Path, gen_study: Study, cache: Path
) -> None:
    scorer = LexicalScorer()
    outcome = run_study(gen_study, RunOptions(tmp_path, cache), factory, scorer)
    # 3 variants x 10 generation items vs reference, 2 variants x 10 vs the baseline's output
    assert outcome.scored == 30 + 20
    analysis = write_report(tmp_path)[1].json_dict()
    by = {v["level"]: v for v in analysis["variants"]}
    assert by["F16"]["generation"]["metrics"]["key_avg"]["mean"] == pytest.approx(1.0)
    assert by["Q8_0"]["gen_delta_pct"] == pytest.approx(0.0)
    q4 = by["Q4_K_M"]
    assert q4["gen_delta_pct"] < -50 and q4["tier"] == "unacceptable"
    assert q4["generation"]["repetition_collapse"] is True
    assert by["Q8_0"]["generation"]["repetition_collapse"] is False
    assert q4["n"] == 4  # accuracy counts multiple-choice rows only
    fidelity = by["Q8_0"]["generation"]["fidelity"]["metrics"]["exact_match"]["mean"]
    assert fidelity == 1.0
    report = (tmp_path / "report.md").read_text()
    assert "## Generation quality" in report and "lexical-stand-in" in report
    assert score_run(tmp_path, scorer=LexicalScorer()) == 0


def test_scoring_resumes_after_a_kill(tmp_path: Path, gen_study: Study, cache: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_study(
            gen_study,
            RunOptions(tmp_path, cache),
            factory,
            LexicalScorer(fail_after=3),
        )
    kept = read_rows(tmp_path / SCORES).rows
    assert len(kept) == 12  # three batches of 4 were durable before the kill
    rest = LexicalScorer()
    assert score_run(tmp_path, scorer=rest) == 50 - 12
    rows = read_rows(tmp_path / SCORES).rows
    keys: set[Any] = {(r["variant"], r["task"], r["item"], r["against"]) for r in rows}
    assert len(rows) == len(keys) == 50


def test_every_report_table_row_has_as_many_cells_as_its_header(
    tmp_path: Path, gen_study: Study, cache: Path
) -> None:
    run_study(gen_study, RunOptions(tmp_path, cache), factory, LexicalScorer())
    write_report(tmp_path)
    width = None
    for line in (tmp_path / "report.md").read_text().splitlines():
        if not line.startswith("|"):
            width = None
            continue
        cells = line.count("|") - 1
        width = cells if width is None else width
        assert cells == width, line
