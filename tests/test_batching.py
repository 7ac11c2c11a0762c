"""Batch groups (fixed by plan position), a sequence's stop rules, the config's batch_size, and a
resumed study that asks a partly logged group again as a whole and writes nothing twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from quantmatrix.backends import batching
from quantmatrix.backends.base import Backend, GenerationRequest, GenerationResult
from quantmatrix.backends.fake import FakeBackend, hashed_letter_probs, hashed_letter_script
from quantmatrix.backends.llamacpp_seq import SeqState, common_prefix
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.resume import pending_groups
from quantmatrix.runlog import SAMPLES, read_rows
from tests.conftest import fake_study_dict


def req(key: str, group: int | None = None, **over: object) -> GenerationRequest:
    return GenerationRequest(key, "p", 8, batch_group=group, **over)  # type: ignore[arg-type]


def test_runs_join_neighbours_of_one_group_only() -> None:
    reqs = [req("a", 0), req("b", 0), req("c", None), req("d", None), req("e", 1), req("f", 0)]
    assert [[r.key for r in run] for run in batching.runs(reqs)] == [
        ["a", "b"], ["c"], ["d"], ["e"], ["f"]]  # fmt: skip
    assert [batching.group_of(i, 4) for i in (0, 3, 4, 9)] == [0, 0, 1, 2]
    assert batching.group_of(7, 1) is None


def test_pending_groups_keep_a_partly_done_group_whole() -> None:
    items = list("abcdefghij")
    done = set("abcdeg")  # group 0 (a-d) done; group 1 (e-h) partly; group 2 (i, j) open
    logged = frozenset((x,) for x in done)
    got = pending_groups(items, lambda x: (x,), logged, 4)
    assert got == [(4, "e"), (5, "f"), (6, "g"), (7, "h"), (8, "i"), (9, "j")]
    singles = pending_groups(items, lambda x: (x,), logged, 1)
    assert [x for _, x in singles] == list("fhij")


def test_config_batch_size_and_the_hash_of_older_runs() -> None:
    study = parse_study(fake_study_dict())
    assert study.batch_size == 4
    old = parse_study(fake_study_dict(batch_size=1))
    data = old.model_dump(mode="json")
    for holder in (data, *data["models"]):  # fields added since, at their "as before" value
        for name in ("gpu_layers", "imatrix", "calibration", "batch_size", "sampling", "endpoints",
                     "kv_cache", "baseline_kv", "memory", "long_context"):  # fmt: skip
            holder.pop(name, None)
    payload = json.dumps(data, sort_keys=True, separators=(",", ":"))  # as before the field
    assert old.config_hash() == hashlib.sha256(payload.encode()).hexdigest()
    assert study.config_hash() != old.config_hash()  # batched outputs may differ: a new run
    fake = ModelSpec(name="f", source="x", levels=["Q8_0"], backend="fake")
    assert batching.batch_size_for(fake, study) == 1
    engine = ModelSpec(name="m", source="x.gguf", levels=["Q8_0"])
    assert batching.batch_size_for(engine, study) == 4


def detok(tokens: list[int]) -> bytes:
    return b"".join({1: b"Hi", 2: b"\n", 3: b" A", 4: b"STOP", 5: b"\xc3", 6: b"\xa9"}[t]
                    for t in tokens)  # fmt: skip


def run_seq(tokens: Sequence[int], eog: int = 0, budget: int = 5, **over: object) -> SeqState:
    seq = SeqState(req("k", **over), [9, 9], (b"STOP",), budget)
    for t in tokens:
        if not seq.active:
            break
        seq.accept(t, t == eog, detok)
    return seq


def test_a_sequence_stops_as_the_single_stream_path_does() -> None:
    stop = run_seq([1, 4, 1])
    assert (stop.output(), stop.finish, stop.sampled) == ("Hi", "stop", 2)
    eog = run_seq([3, 0, 1], eog=0)
    assert (eog.output(), eog.finish, eog.sampled) == (" A", "stop", 2)
    length = run_seq([1, 1, 1, 1, 1, 1], budget=3)
    assert (length.output(), length.finish, length.sampled) == ("HiHiHi", "length", 3)
    # the line stop: the first line with content, leading blank lines skipped
    line = run_seq([2, 3, 2, 1], stop_at_line_end=True)
    assert (line.output(), line.finish, line.sampled) == ("A", "stop", 3)
    assert run_seq([2, 3, 2, 1]).output() == "\n A\nHi"  # no line stop asked
    # an incomplete UTF-8 character holds the budget check back one token (llama-cpp-python's)
    accent = run_seq([1, 5, 6, 1], budget=2)
    assert (accent.output(), accent.finish, accent.sampled) == ("Hié", "length", 3)
    timing = length.timing(0.5)
    assert timing.prompt_tokens == 2 and timing.generated_tokens == 3 and timing.wall_s == 0.5


def test_common_prefix_leaves_each_prompt_its_last_token() -> None:
    assert common_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == [1, 2]
    assert common_prefix([[1, 2, 3], [1, 2, 3]]) == [1, 2]
    assert common_prefix([[7], [7, 8]]) == [] and common_prefix([]) == []


class GroupRecorder:
    """A fake backend factory that records every request asked, and can fail after n results."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.asked: list[GenerationRequest] = []
        self.fail_after = fail_after

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        inner = FakeBackend(hashed_letter_script(variant.id),
                            letters=hashed_letter_probs(variant.id))  # fmt: skip
        recorder = self

        class Recording(FakeBackend):
            def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[GenerationResult]:
                for n, result in enumerate(inner.generate(requests)):
                    if recorder.fail_after is not None and n >= recorder.fail_after:
                        raise RuntimeError("killed")
                    recorder.asked.append(requests[n])
                    yield result

        return Recording(inner.script, letters=inner.letters)


def test_a_resumed_group_is_asked_whole_and_logged_once(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batching, "BATCHING_BACKENDS", ("llamacpp", "fake"))
    study = parse_study(fake_study_dict(batch_size=4, warmup_runs=0))
    whole, part = tmp_path / "whole", tmp_path / "part"
    run_study(study, RunOptions(whole, cache), GroupRecorder())
    crashing = GroupRecorder(fail_after=6)  # the first variant dies inside its second group
    with pytest.raises(RuntimeError):
        run_study(study, RunOptions(part, cache), crashing)
    assert len(read_rows(part / SAMPLES).rows) == 6
    again = GroupRecorder()
    outcome = run_study(study, RunOptions(part, cache), again)
    first = [r for r in again.asked if r.key.startswith(("mmlu", "arc"))][:4]
    assert [r.batch_group for r in first] == [1, 1, 1, 1]  # group 1 (plan 4-7) asked again whole
    assert outcome.evaluated == 54 - 6 and outcome.skipped == 6

    def content(run: Path) -> list[tuple[str, str, str]]:
        return sorted((r["variant"], r["item"], r["output"]) for r in read_rows(run / SAMPLES).rows)

    assert content(part) == content(whole) and len(content(part)) == 54
