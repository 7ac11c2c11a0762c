"""Batched decoding on real llama.cpp (the tiny random-weight llama, F16 and Q8_0): one sequence
through the batch loop equals the single-stream path exactly; batched outputs repeat across
runs, thread counts and resumes (a group never depends on what ran before it); a study run
twice, and a study killed mid-group then resumed, log the same rows."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from quantmatrix.backends.base import BackendError, GenerationRequest, GenerationResult
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.config import ModelSpec, Study, load_study
from quantmatrix.engine.load import EngineSettings
from quantmatrix.models.ladder import Variant, quantize_file
from quantmatrix.pipeline import RunOptions, default_backend, run_study
from quantmatrix.runlog import SAMPLES, read_rows
from tests.tiny_model import write_tiny_llama

pytestmark = [pytest.mark.engine]

HEAD = "The following is a multiple choice question. Reply with only the letter (A-D).\n\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-batch")
    f16 = write_tiny_llama(folder / "F16.gguf")
    q8 = folder / "Q8_0.gguf"
    quantize_file(f16, q8, "Q8_0", 2)
    return {"F16": f16, "Q8_0": q8}


def backend(path: Path, batch_size: int = 4, threads: int = 2) -> LlamaCppBackend:
    options = LlamaCppOptions(512, threads, chat=True, engine=EngineSettings(),
                              batch_size=batch_size)  # fmt: skip
    return LlamaCppBackend(path, options)


def requests(n_groups: int = 3) -> list[GenerationRequest]:
    out = []
    for i in range(4 * n_groups):
        prompt = f"{HEAD}What is {i} plus {i}?\nA. {2 * i}\nB. {i}\nC. 1\nD. 0\nAnswer:"
        mc = i % 2 == 0
        out.append(GenerationRequest(f"r{i}", prompt, 6 if mc else 12, stop_at_line_end=mc,
                                     letter_count=4 if mc else 0, batch_group=i // 4))  # fmt: skip
    return out


def outcome(results: Sequence[GenerationResult]) -> list[tuple[Any, ...]]:
    return [(r.key, r.text, r.finish_reason, r.letter_probs, r.timing.generated_tokens)
            for r in results]  # fmt: skip


@pytest.mark.parametrize("level", ["F16", "Q8_0"])
def test_one_sequence_in_the_batch_loop_is_the_single_stream_path(
    models: dict[str, Path], level: str
) -> None:
    b = backend(models[level])
    try:
        for request in requests(1):
            single = b._one(request)
            seqs = b._sequences([request])  # the batch loop with this one sequence
            assert seqs is not None
            (batched,) = b._batched(seqs)
            assert outcome([batched]) == outcome([single])
            assert batched.timing.prompt_tokens == single.timing.prompt_tokens
    finally:
        b.close()


def test_batched_outputs_repeat_across_runs_threads_and_resumes(models: dict[str, Path]) -> None:
    reqs = requests(3)
    b = backend(models["Q8_0"])
    try:
        started = time.perf_counter()
        first = list(b.generate(reqs))
        elapsed = time.perf_counter() - started
        again = list(b.generate(reqs))  # the shared prefix now restored from its saved state
    finally:
        b.close()
    assert outcome(again) == outcome(first)
    assert [r.key for r in first] == [r.key for r in reqs]
    assert all(r.letter_probs is not None for r in first if r.key in ("r0", "r2", "r4"))
    walls = sum(r.timing.wall_s for r in first)
    assert 0.5 * elapsed <= walls <= elapsed  # shares of the groups' wall time
    for r in first:
        t = r.timing
        assert t.prompt_eval_s and t.prompt_eval_s > 0 and t.ttft_s and t.ttft_s > 0
        assert t.decode_tokens == t.generated_tokens - 1 or r.finish_reason == "length"
    resumed = backend(models["Q8_0"], threads=1)  # a fresh process' state, another thread count
    try:
        later = list(resumed.generate(reqs[4:]))
    finally:
        resumed.close()
    assert outcome(later) == outcome(first)[4:]


def test_agreement_with_the_single_stream_path_is_reported(models: dict[str, Path]) -> None:
    """Not asserted equal (llama.cpp's results depend on the batch shape): counted, and the
    letter distributions stay close."""
    reqs = requests(2)
    b = backend(models["F16"])
    try:
        batched = list(b.generate(reqs))
        single = list(b.generate([dataclasses.replace(r, batch_group=None) for r in reqs]))
    finally:
        b.close()
    same = sum(x.text == y.text for x, y in zip(batched, single, strict=True))
    print(f"batched == single-stream: {same}/{len(reqs)} texts")
    for x, y in zip(batched, single, strict=True):
        if x.letter_probs is not None and y.letter_probs is not None:
            pairs = zip(x.letter_probs, y.letter_probs, strict=True)
            assert max(abs(p - q) for p, q in pairs) < 0.05


def study_file(folder: Path, source: Path) -> Path:
    data = {
        "name": "batch-engine",
        "models": [{"name": "tiny", "source": str(source), "levels": ["F16", "Q8_0"]}],
        "tasks": [
            {"kind": "mmlu", "per_subject": None, "n": 6},
            {"kind": "arc_challenge", "n": 5},
        ],
        "decoding": {"mc_max_new_tokens": 6},
        "divergence": {"kld": False},
        "warmup_runs": 1,
        "threads": 2,
        "context_length": 512,
        "batch_size": 4,
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Dying:
    """The default backend factory whose backends die after ``after`` results of a variant."""

    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Any:
        inner = default_backend(variant, spec, study)
        after = self.after

        def generate(reqs: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
            for n, result in enumerate(inner_generate(reqs)):
                if n >= after and reqs[0].batch_group is not None:
                    raise BackendError("killed mid-group")
                yield result

        inner_generate = inner.generate
        inner.generate = generate
        return inner


def test_a_study_repeats_and_a_resume_mid_group_matches(tmp_path: Path) -> None:
    source = write_tiny_llama(tmp_path / "tiny.gguf")
    study = load_study(study_file(tmp_path, source))
    cache = tmp_path / "cache"

    def rows(run: Path) -> list[tuple[str, str, str, str]]:
        got = read_rows(run / SAMPLES).rows
        return sorted((r["variant"], r["task"], r["item"], r["output"]) for r in got)

    one, two, part = tmp_path / "one", tmp_path / "two", tmp_path / "part"
    run_study(study, RunOptions(one, cache))
    run_study(study, RunOptions(two, cache))
    assert rows(one) == rows(two) and len(rows(one)) == 22
    first = run_study(study, RunOptions(part, cache), Dying(6))
    assert first.failed_variants == ["tiny@F16", "tiny@Q8_0"]
    assert len(rows(part)) == 12  # group 0 and half of group 1, per variant
    run_study(study, RunOptions(part, cache))
    assert rows(part) == rows(one)


def test_the_chat_template_is_compiled_once_per_backend(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantmatrix.scoring import logits as lg

    made: list[int] = []
    real = lg.chat_formatter

    def counted(llm: Any) -> Any:
        made.append(1)
        return real(llm)

    monkeypatch.setattr(lg, "chat_formatter", counted)
    b = backend(models["F16"])
    try:
        got = list(b.generate(requests(2)))
    finally:
        b.close()
    assert len(got) == 8 and len(made) == 1  # not once per request (a Jinja compile each)
