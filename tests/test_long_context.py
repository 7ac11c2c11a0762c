"""The long-context probe on the fake backend: config, the many-shot plan, the token-KL phase
with scripted rows (flat and growing KL), resume, the analysis and the report section."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from quantmatrix.backends.fake_logits import FakeWindows, Profile, flat_profile
from quantmatrix.config import ConfigError, ModelSpec, Study, parse_study
from quantmatrix.data.benchmarks import DataError
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.long_context import ModelOpener, check_corpus, default_opener
from quantmatrix.report.render import write_report
from quantmatrix.runlog import LONG_CONTEXT, RunLog, read_rows
from quantmatrix.scoring.windows import WindowModel
from quantmatrix.tasks.plan import plan_samples
from quantmatrix.verify import verify_run
from tests.conftest import fake_study_dict

BUCKETS = [64, 256, 1024]


def study(**long_context: Any) -> Study:
    spec = {"buckets": BUCKETS, "documents": 4, **long_context}
    return parse_study(fake_study_dict(long_context=spec, context_length=1100))


def opener_of(profiles: dict[str, Profile], log: list[str] | None = None) -> ModelOpener:
    """Scripted rows per level; ``log`` collects the variants opened (in order)."""

    def open_model(
        v: Variant, spec: ModelSpec, s: Study, n_ctx: int
    ) -> AbstractContextManager[WindowModel]:
        if log is not None and n_ctx:
            log.append(v.id)
        return nullcontext(FakeWindows(profiles[v.level], v.id))

    return open_model


def growing(scale: float) -> Profile:
    return lambda p: scale * (1.0 + p / 128)


FLAT_AND_GROWING = {"F16": flat_profile(0.0), "Q8_0": flat_profile(0.3), "Q4_K_M": growing(0.1)}


def run(tmp_path: Path, s: Study, opener: ModelOpener | None = None) -> RunLog:
    options = RunOptions(tmp_path / "run", tmp_path / "cache")
    run_study(s, options, opener=opener or default_opener)
    return RunLog.load(tmp_path / "run")


def test_off_by_default_and_the_hash_of_older_studies_is_kept() -> None:
    plain = parse_study(fake_study_dict())
    assert plain.long_context is None
    same = parse_study(fake_study_dict(long_context=None))
    assert plain.config_hash() == same.config_hash()
    assert study().config_hash() != plain.config_hash()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"buckets": [512, 256]}, "must rise"),
        ({"buckets": [8, 64]}, "at least 16"),
        ({"shots": [1, 2]}, "one count per bucket"),
        ({"bucketz": [1]}, "unknown field 'long_context.bucketz'"),
    ],
)
def test_bad_specs_fail_in_one_line(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_study(fake_study_dict(long_context={"buckets": BUCKETS, **spec}))
    assert "\n" not in str(err.value)


def test_many_shot_prompts_need_the_context() -> None:
    data = fake_study_dict(
        models=[{"name": "m", "source": "x.gguf", "levels": ["F16", "Q8_0"]}],
        long_context={"buckets": BUCKETS, "mc_items": 2},
        context_length=512,
    )
    with pytest.raises(ConfigError, match="context_length >= 1056"):
        parse_study(data)


def test_many_shot_plan_same_questions_growing_shared_prefixes() -> None:
    s = study(mc_items=5)
    plain = plan_samples(parse_study(fake_study_dict()))
    samples = plan_samples(s)
    assert samples[: len(plain)] == plain  # the study's own plan is untouched, first
    shots = [x for x in samples[len(plain) :]]
    assert {x.kind for x in shots} == {"many_shot"} and len(shots) == 5 * len(BUCKETS)
    by_task: dict[str, list[Any]] = {}
    for x in shots:
        by_task.setdefault(x.task, []).append(x)
    assert list(by_task) == [f"many_shot@{end}" for end in BUCKETS]
    items = [[x.item for x in xs] for xs in by_task.values()]
    assert all(i == items[0] for i in items)  # the same questions in every bucket
    counts = [xs[0].inputs["shots"] for xs in by_task.values()]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    for xs in by_task.values():
        # one shared prefix: everything before the question is the same text
        heads = {x.prompt[: x.prompt.rindex("\n\n")] for x in xs}
        assert len(heads) == 1
        # with examples, the prompt stays within the bucket by the 4 characters/token estimate
        # (64 tokens hold no question: the first bucket gets none and lands outside)
        end, k = xs[0].inputs["bucket_end"], xs[0].inputs["shots"]
        assert k == 0 if end == 64 else all(len(x.prompt) / 4 < end for x in xs)
    explicit = plan_samples(study(mc_items=2, shots=[0, 3, 9]))
    assert [x.inputs["shots"] for x in explicit if x.kind == "many_shot"] == [0, 0, 3, 3, 9, 9]


def test_many_shot_rows_stay_out_of_the_main_figures(tmp_path: Path) -> None:
    with_probe = run(tmp_path / "a", study(mc_items=4, documents=0))
    run(tmp_path / "b", parse_study(fake_study_dict(context_length=1100)))
    assert len(with_probe.many_shot) == 3 * 4 * len(BUCKETS)
    assert all(r.task_kind != "many_shot" for r in with_probe.samples)
    _, a = write_report(tmp_path / "a" / "run")
    _, b = write_report(tmp_path / "b" / "run")
    for sa, sb in zip(a.variants, b.variants, strict=True):
        assert (sa.accuracy, sa.n, sa.tasks, sa.timing) == (sb.accuracy, sb.n, sb.tasks, sb.timing)
    assert a.statistics == b.statistics and a.divergence == b.divergence
    assert a.probes is not None and a.probes.long_context is not None
    assert b.probes is None
    levels = a.probes.long_context.many_shot
    assert [lv.level for lv in levels] == ["F16", "Q8_0", "Q4_K_M"]
    assert all(len(lv.buckets) == len(BUCKETS) for lv in levels)
    assert levels[0].buckets[0].change_pp is None  # the baseline is its own reference
    assert levels[1].buckets[0].change_pp is not None and levels[1].trend is not None


def test_flat_and_growing_profiles_are_told_apart(tmp_path: Path) -> None:
    log = run(tmp_path, study(), opener_of(FLAT_AND_GROWING))
    rows = log.long_context
    assert len(rows) == 3 * 4 * len(BUCKETS)
    assert all(r.kl_sum == 0.0 and r.same_top == r.n_tokens for r in rows if r.level == "F16")
    assert {(r.start, r.end) for r in rows} == {(0, 64), (64, 256), (256, 1024)}
    assert all(r.n_tokens == r.end - r.start for r in rows)  # the papers are long enough
    assert all(len(r.kl_block_means) == -(-(r.end - r.start) // r.block_tokens) for r in rows)
    _, analysis = write_report(tmp_path / "run")
    assert analysis.probes is not None and analysis.probes.long_context is not None
    lc = analysis.probes.long_context
    by_level = {lv.level: lv for lv in lc.levels}
    assert by_level["F16"].trend is None
    flat, grows = by_level["Q8_0"].trend, by_level["Q4_K_M"].trend
    assert flat is not None and grows is not None
    assert flat.verdict == "no change detected" and grows.verdict == "grows"
    assert grows.ratio is not None and grows.ratio > 10  # the scripted noise grows 9x, KL ~x^2
    assert grows.slope_per_doubling.low is not None and grows.slope_per_doubling.low > 0
    kl = [b.kl.value for b in by_level["Q4_K_M"].buckets]
    assert kl == sorted(kl)
    # the control: the same text from an empty cache. The fake's departure follows the
    # position, so a growing profile shows a context effect and a flat one none
    flat_same = [b.same_text for b in by_level["Q8_0"].buckets]
    grow_same = [b.same_text for b in by_level["Q4_K_M"].buckets]
    assert flat_same[0] is None and grow_same[0] is None  # the first bucket starts at 0
    for st in flat_same[1:]:
        assert st is not None and st.tokens in (192, 512)
        assert st.change.low is not None and st.change.high is not None
        assert st.change.low <= 0 <= st.change.high
    assert all(st is not None and (st.change.low or 0) > 0 for st in grow_same[1:])
    assert all(r.restart_tokens == 0 for r in rows if r.bucket == 0)
    assert {r.restart_tokens for r in rows if r.bucket > 0} == {192, 512}
    assert all(r.restart_kl_sum == 0 for r in rows if r.level == "F16")
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Context length" in report and "The same text with and without" in report
    assert "### Many-shot" not in report  # no many-shot questions in this study
    assert "| m@Q4_K_M | " in report and "grows |" in report
    assert (tmp_path / "run" / "plots" / "long_context_kl.png").stat().st_size > 1000


def test_resume_writes_only_what_is_missing(tmp_path: Path) -> None:
    s = study()
    opened: list[str] = []
    run(tmp_path, s, opener_of(FLAT_AND_GROWING, opened))
    path = tmp_path / "run" / LONG_CONTEXT
    lines = path.read_text().splitlines()
    # keep everything but Q4_K_M's last bucket of document 3: a kill just before it
    keep = [ln for ln in lines if not ('"m@Q4_K_M"' in ln and '"document":3' in ln
                                        and '"bucket":2' in ln)]  # fmt: skip
    assert len(keep) == len(lines) - 1
    path.write_text("\n".join(keep) + "\n")
    before = opened[:]
    counted: dict[str, FakeWindows] = {}

    def counting(v: Variant, spec: ModelSpec, st: Study, n_ctx: int) -> Any:
        model = FakeWindows(FLAT_AND_GROWING[v.level], v.id)
        if n_ctx:
            counted[v.id] = model
        return nullcontext(model)

    run_study(s, RunOptions(tmp_path / "run", tmp_path / "cache"), opener=counting)
    assert verify_run(tmp_path / "run") == ([], [])
    rows = read_rows(path).rows
    assert len(rows) == len(lines)
    # the baseline was opened to read its stored rows' documents; only Q4_K_M evaluated, and
    # only its document 3, to the end of the missing bucket
    assert counted["m@F16"].evaluated == 0 and "m@Q8_0" not in counted
    # the sequence to the missing bucket's end, and that bucket's control (512 positions)
    assert counted["m@Q4_K_M"].evaluated == 1024 + 512
    assert before == ["m@F16", "m@Q8_0", "m@Q4_K_M"]


def test_short_documents_cover_the_buckets_they_reach(tmp_path: Path) -> None:
    corpus = tmp_path / "docs.jsonl"
    words = [" ".join(f"w{i}" for i in range(n)) for n in (2000, 300, 100, 40)]
    lines = [json.dumps({"id": f"d{len(t.split())}", "text": t}) + "\n" for t in words]
    corpus.write_text("".join(lines))
    s = study(corpus_path=str(corpus), documents=3)
    log = run(tmp_path, s, opener_of(FLAT_AND_GROWING))
    docs = {(r.document_id, r.bucket): r.n_tokens for r in log.long_context if r.level == "F16"}
    # the one long enough first, then the longest others; BOS counts as a position
    assert docs == {
        ("d2000", 0): 64, ("d2000", 1): 192, ("d2000", 2): 768,
        ("d300", 0): 64, ("d300", 1): 192, ("d300", 2): 45,
        ("d100", 0): 64, ("d100", 1): 37,
    }  # fmt: skip
    _, analysis = write_report(tmp_path / "run")
    assert analysis.probes is not None and analysis.probes.long_context is not None
    q4 = next(lv for lv in analysis.probes.long_context.levels if lv.level == "Q4_K_M")
    assert [b.documents for b in q4.buckets] == [3, 3, 2]
    assert q4.trend is not None and q4.trend.change.n == 2  # documents with both ends


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "not found"),
        (lambda p: p, "holds no .txt files"),
        (lambda p: _write(p / "bad.jsonl", '{"id": 1}\n'), "needs a 'text' field"),
    ],
)
def test_bad_corpus_paths_fail_in_one_line(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    s = study(corpus_path=str(make(tmp_path)))
    with pytest.raises(DataError, match=message) as err:
        check_corpus(s)
    assert "\n" not in str(err.value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_default_corpus_is_the_packaged_papers() -> None:
    from quantmatrix.data.long_documents import QASPER_SOURCE, load_documents

    docs, source = load_documents(None, 42)
    assert source == QASPER_SOURCE and len(docs) == 260
    assert sum(len(d.text) > 38_000 for d in docs) >= 25  # about 8,192 Qwen2.5 tokens
    assert docs == load_documents(None, 42)[0]
    assert docs[0].id != load_documents(None, 7)[0][0].id
