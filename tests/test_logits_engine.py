"""Letter probabilities, token-level KL and the divergence phase on a tiny random llama model."""

from __future__ import annotations

import collections
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from quantmatrix.backends.base import GenerationRequest
from quantmatrix.backends.llamacpp import LlamaCppBackend, LlamaCppOptions
from quantmatrix.data.benchmarks import MCItem
from quantmatrix.engine.load import open_for_eval
from quantmatrix.models.gguf_info import read_info
from quantmatrix.models.ladder import Variant, quantize_file
from quantmatrix.pipeline.divergence import KLD, DivergenceOptions, run_divergence
from quantmatrix.runlog import KldRow, LetterStats, load_rows, read_rows
from quantmatrix.scoring import divergence as dv
from quantmatrix.scoring import logits as lg
from quantmatrix.tasks.multiple_choice import letter_stats, render_prompt
from tests.tiny_model import write_tiny_llama

pytestmark = pytest.mark.engine

THREADS = 1
ITEMS = [
    MCItem("t/1", "t", "What is two plus two?", ("3", "4", "5", "22"), 1, "arithmetic"),
    MCItem("t/2", "t", "Which one is a colour?", ("red", "dog", "run"), 0),
    MCItem("t/3", "t", "Pick the vowel.", ("b", "c", "d", "e", "f"), 3),
    MCItem("t/4", "t", "Water boils at sea level at", ("50 C", "100 C", "150 C", "0 C"), 1),
]
OPTIONS = DivergenceOptions(threads=THREADS, corpus_tokens=192, chunk_tokens=64, top_k=16)


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    f16 = write_tiny_llama(folder / "F16.gguf")
    paths = {"F16": f16}
    for level in ("Q8_0", "Q2_K"):
        paths[level] = folder / f"{level}.gguf"
        quantize_file(f16, paths[level], level, THREADS)
    return paths


def _variant(level: str, path: Path) -> Variant:
    return Variant("tiny", level, path, read_info(path), "sha", "F16", False)


def _llm(path: Path, logits_all: bool = False, n_ctx: int = 512) -> Any:
    return open_for_eval(path, n_ctx, THREADS, logits_all)


@pytest.fixture(scope="module")
def f16_llm(ladder: dict[str, Path]) -> Iterator[Any]:
    llm = _llm(ladder["F16"])
    yield llm
    llm.close()


def test_letter_tokens_are_single_tokens(f16_llm: Any) -> None:
    ids = lg.letter_token_ids(f16_llm, 5)
    assert ids[0] == (49, 330)  # SmolLM2's tokenizer: "A" and " A"
    assert all(len(forms) == 2 for forms in ids)


@pytest.mark.parametrize("chat", [True, False])
def test_prompt_tokens_match_what_the_backend_evaluates(f16_llm: Any, chat: bool) -> None:
    prompt = render_prompt(ITEMS[0])
    tokens = lg.prompt_tokens(f16_llm, prompt, chat)
    if chat:
        messages = [{"role": "user", "content": prompt}]
        f16_llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)
    else:
        f16_llm.create_completion(prompt=prompt, max_tokens=1, temperature=0.0)
    assert f16_llm.input_ids[: len(tokens)].tolist() == tokens


def test_letter_probs_sum_below_one_and_deterministic(ladder: dict[str, Path]) -> None:
    results = []
    for logits_all in (False, False, True):
        llm = _llm(ladder["F16"], logits_all=logits_all)
        ids = lg.letter_token_ids(llm, 4)
        tokens = lg.prompt_tokens(llm, render_prompt(ITEMS[0]), True)
        results.append(lg.letter_probs(llm, tokens, ids))
        llm.close()
    first = results[0]
    assert first.shape == (4,) and np.all(first > 0) and first.sum() <= 1.0
    assert np.array_equal(first, results[1])  # two loads, same bytes
    assert np.allclose(first, results[2], rtol=1e-3)  # last row of llm.scores


def test_stored_baseline_forms(ladder: dict[str, Path]) -> None:
    llm = _llm(ladder["F16"], logits_all=True, n_ctx=64)
    tokens = llm.tokenize(b"The quick brown fox jumps over the lazy dog.", add_bos=False)
    stored = dv.compress_chunk(lg.token_logits(llm, tokens), tokens, 8, keep_f16=True)
    llm.close()
    top, full = stored.top, stored.full_f16
    assert isinstance(top, dv.TopK) and top.ids.shape == (len(tokens), 8)
    assert isinstance(full, np.ndarray) and full.dtype == np.float16
    assert np.array_equal(top.top1, np.argmax(full, axis=-1))


def _keys(path: Path, *fields: str) -> list[tuple[Any, ...]]:
    return [tuple(r[f] for f in fields) for r in read_rows(path).rows]


@pytest.fixture(scope="module")
def phase_run(ladder: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    variants = [_variant(lv, p) for lv, p in ladder.items()]
    run_divergence(run_dir, variants, ITEMS, {"tiny": "tiny@F16"}, OPTIONS)
    return run_dir


def _kld_by_variant(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in read_rows(run_dir / KLD).rows:
        out[r["variant"]].append(r)
    return out


def test_self_kl_is_zero_and_quantized_kl_positive(phase_run: Path) -> None:
    rows = _kld_by_variant(phase_run)
    assert set(rows) == {"tiny@F16", "tiny@Q8_0", "tiny@Q2_K"}
    base = rows["tiny@F16"]  # the same file loaded again, against its stored rows
    assert all(x == 0.0 for r in base for x in r["kl"])
    assert all(r["same_top"] == r["n_tokens"] for r in base)

    def mean_kl(v: str) -> float:
        return float(np.mean([x for r in rows[v] for x in r["kl"]]))

    assert 0.0 < mean_kl("tiny@Q8_0") < mean_kl("tiny@Q2_K")
    q2 = rows["tiny@Q2_K"]
    assert sum(r["same_top"] for r in q2) < sum(r["n_tokens"] for r in q2)
    assert (phase_run / "baseline_logits" / "tiny.npz").exists()


def test_f16_storage_agrees_with_compact(
    phase_run: Path, ladder: dict[str, Path], tmp_path: Path
) -> None:
    """float16 full rows vs the default top-k + tail samples: same KL within a few percent."""
    variants = [_variant(lv, ladder[lv]) for lv in ("F16", "Q2_K")]
    options = dataclasses.replace(OPTIONS, keep_f16=True)
    run_divergence(tmp_path, variants, ITEMS, {"tiny": "tiny@F16"}, options)
    f16 = _kld_by_variant(tmp_path)
    assert all(r["kl_method"] == "f16" for rows in f16.values() for r in rows)
    assert all(x == 0.0 for r in f16["tiny@F16"] for x in r["kl"])
    exact = np.mean([x for r in f16["tiny@Q2_K"] for x in r["kl"]])
    compact = np.mean([x for r in _kld_by_variant(phase_run)["tiny@Q2_K"] for x in r["kl"]])
    bound = np.mean([x for r in f16["tiny@Q2_K"] for x in r["kl_topk"]])
    assert bound <= exact and compact == pytest.approx(exact, rel=0.05)


def _ask(path: Path, chat: bool, letters: bool) -> list[Any]:
    backend = LlamaCppBackend(path, LlamaCppOptions(512, THREADS, chat=chat))
    requests = [
        GenerationRequest(item.id, render_prompt(item), 8, stop_at_line_end=True,
                          letter_count=len(item.choices) if letters else 0)
        for item in ITEMS
    ]  # fmt: skip
    try:
        return list(backend.generate(requests))
    finally:
        backend.close()


@pytest.fixture(scope="module")
def captured(ladder: dict[str, Path]) -> dict[str, list[Any]]:
    return {level: _ask(path, True, True) for level, path in ladder.items()}


@pytest.mark.parametrize("chat", [True, False])
def test_letters_captured_during_generation_equal_a_separate_pass(
    ladder: dict[str, Path], captured: dict[str, list[Any]], chat: bool
) -> None:
    """The letter distribution the backend keeps from its first sampling step is bit-identical
    to one forward pass over the same prompt tokens, and keeping it changes no reply."""
    path = ladder["Q2_K"]
    with_letters = captured["Q2_K"] if chat else _ask(path, chat, True)
    plain = _ask(path, chat, False)
    llm = _llm(path)
    for item, got, ref in zip(ITEMS, with_letters, plain, strict=True):
        tokens = lg.prompt_tokens(llm, render_prompt(item), chat)
        separate = lg.letter_probs(llm, tokens, lg.letter_token_ids(llm, len(item.choices)))
        assert got.letter_probs is not None and np.array_equal(got.letter_probs, separate)
        assert ref.letter_probs is None and got.text == ref.text
        stats = letter_stats(got.letter_probs, item.gold_letter)
        assert 0 < stats["letter_mass"] <= 1.0 and abs(sum(stats["dist"]) - 1.0) < 1e-9
    llm.close()


def test_phase_resumes_without_duplicates(
    phase_run: Path, ladder: dict[str, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(phase_run, run_dir)
    full_kld = _keys(run_dir / KLD, "variant", "chunk")
    lines = (run_dir / KLD).read_bytes().split(b"\n")  # a kill: rows lost, a torn last line
    (run_dir / KLD).write_bytes(b"\n".join(lines[:4]) + b"\n" + lines[4][:20])
    variants = [_variant(lv, p) for lv, p in ladder.items()]
    out = run_divergence(run_dir, variants, ITEMS, {"tiny": "tiny@F16"}, OPTIONS)
    assert out.kld_rows == len(full_kld) - 4
    kld = _keys(run_dir / KLD, "variant", "chunk")
    assert sorted(kld) == sorted(full_kld) and len(set(kld)) == len(kld)

    # the rows asked again (against the baseline read back from its file) are the very rows
    # of the unbroken run, which computed the baseline itself: its nll sums included
    def rows(run: Path) -> list[dict[str, Any]]:
        return sorted(read_rows(run / KLD).rows, key=lambda r: (r["variant"], r["chunk"]))

    assert rows(run_dir) == rows(phase_run)
    again = run_divergence(run_dir, variants, ITEMS, {"tiny": "tiny@F16"}, OPTIONS)
    assert again.kld_rows == 0


def test_analysis_of_real_rows(phase_run: Path, captured: dict[str, list[Any]]) -> None:
    from quantmatrix.analysis.divergence import letter_rows, summarize_divergence
    from quantmatrix.report.divergence_md import render_divergence_md

    samples = [
        SimpleNamespace(variant=f"tiny@{level}", model="tiny", level=level, task=item.task,
                        item=item.id, error=None,
                        letters=LetterStats(**letter_stats(r.letter_probs, item.gold_letter)))
        for level, results in captured.items()
        for item, r in zip(ITEMS, results, strict=True)
    ]  # fmt: skip
    letters = letter_rows(samples, {"tiny": "tiny@F16"})  # type: ignore[arg-type]
    kld = load_rows(phase_run, KldRow, None).rows
    div = summarize_divergence(letters, kld, n_boot=200)
    assert div.json_dict()["order"] == ["tiny@F16", "tiny@Q8_0", "tiny@Q2_K"]
    base = div.json_dict()["variants"]["tiny@F16"]
    assert base["letters"]["letter_kl_mean"] == 0.0 and base["tokens"]["ppl_ratio"] == 1.0
    assert "tiny@Q2_K" in render_divergence_md(div)
