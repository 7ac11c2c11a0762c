"""The determinism check against a server (the Ollama stand-in, tests/ollama_standin.py): a
steady server repeats every answer; one switched to answer nondeterministically is caught, in
text and in letter probabilities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quantmatrix.analysis.build import analyze
from quantmatrix.config import parse_study
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.runlog import RunLog
from tests.conftest import fake_study_dict
from tests.ollama_standin import OllamaStandIn
from tests.test_generation_pipeline import LexicalScorer


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    server = OllamaStandIn(models={"tiny:q8_0": 500_000_000, "tiny:q4_K_M": 300_000_000})
    yield server.start()
    server.stop()


def server_study(url: str, k: int) -> dict[str, object]:
    model = {"name": "tiny", "backend": "ollama", "endpoint": url, "source": "tiny",
             "levels": ["Q8_0", "Q4_K_M"]}  # fmt: skip
    tasks = [{"kind": "arc_challenge", "n": 5}, {"kind": "mmlu", "per_subject": None, "n": 3},
             {"kind": "generation", "per_task": 1, "tasks": ["summarization", "qa"]}]  # fmt: skip
    return fake_study_dict(models=[model], tasks=tasks, determinism={"items": k},
                           timing={"enabled": False})  # fmt: skip


@pytest.mark.parametrize("unsteady", [False, True])
def test_a_server_is_told_deterministic_or_not(
    tmp_path: Path, cache: Path, standin: OllamaStandIn, unsteady: bool
) -> None:
    study = parse_study(server_study(standin.url, 3))
    standin.unsteady = unsteady
    out = run_study(study, RunOptions(tmp_path / "run", cache), scorer=LexicalScorer())
    assert not out.failed_variants and out.rechecked == 10  # 3 + 2 items a level
    log = RunLog.load(tmp_path / "run")
    assert {r.backend for r in log.determinism} == {"ollama"}
    assert all(r.threads is None and r.group_size == 1 for r in log.determinism)
    mc = [r for r in log.determinism if r.task_kind == "multiple_choice"]
    gen = [r for r in log.determinism if r.task_kind == "generation"]
    assert len(mc) == 6 and len(gen) == 4
    assert all(r.same_letters is not None for r in mc)  # Ollama gives letter logprobs
    check = analyze(log).determinism
    assert check is not None and check.backends[0].backend == "ollama"
    if not unsteady:
        assert check.all_same
        assert all(r.same_output and r.same_letters is not False for r in log.determinism)
    else:  # the extra word falls after a multiple-choice answer's line: same text there
        assert not check.all_same
        assert all(r.same_output and r.same_letters is False for r in mc)
        assert all(not r.same_output and r.output.endswith(" again") for r in gen)
        diffs = [r.letters_max_abs_diff for r in mc]
        assert all(d is not None and 0 < d < 0.01 for d in diffs)
        assert check.variants[0].outputs_by_kind["generation"].same == 0
