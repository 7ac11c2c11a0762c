"""The whole pipeline on the scripted fake backend: plan, evaluate, log, resume, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantmatrix.backends.base import Backend
from quantmatrix.backends.fake import FakeBackend
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.manifest import RunDirError
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import KLD, SAMPLES, VARIANTS, AppendLog, read_rows
from quantmatrix.verify import verify_run
from tests.conftest import fake_study_dict


def gold_script(wrong_every: dict[str, int]) -> type:
    """A backend factory whose variants answer correctly except every k-th item."""

    class Factory:
        def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
            k = wrong_every.get(variant.level, 0)
            from quantmatrix.tasks.plan import plan_samples

            golds = {f"{s.task}|{s.item}": s.inputs["gold"] for s in plan_samples(study)}
            order = sorted(golds)

            def reply(request):  # type: ignore[no-untyped-def]
                if request.key not in golds:
                    return "ready"
                gold = golds[request.key]
                if k and order.index(request.key) % k == 0:
                    return "I am not sure"
                return f"The answer is {gold}"

            return FakeBackend(reply)

    return Factory


def test_run_writes_log_and_report(tmp_path: Path, fake_study: Study, cache: Path) -> None:
    factory = gold_script({"Q4_K_M": 3})()
    outcome = run_study(fake_study, RunOptions(tmp_path, cache), factory)
    assert outcome.evaluated == 3 * 18 and not outcome.failed_variants
    rows = read_rows(tmp_path / SAMPLES).rows
    assert len(rows) == 54 and len(read_rows(tmp_path / VARIANTS).rows) == 3
    analysis = write_report(tmp_path)[1].json_dict()
    by_level = {v["level"]: v for v in analysis["variants"]}
    assert by_level["F16"]["accuracy"] == 1.0 and by_level["F16"]["tier"] == "negligible"
    q4 = by_level["Q4_K_M"]
    assert q4["unparsed"] == 6 and q4["accuracy"] == pytest.approx(12 / 18)
    assert q4["delta_pp"] == pytest.approx(-100 * 6 / 18) and q4["tier"] == "unacceptable"
    assert q4["raw_exact"] == 0.0
    assert set(q4["tasks"]) == {"mmlu", "arc_challenge"}
    report = (tmp_path / "report.md").read_text()
    assert "Q4_K_M" in report and "unacceptable" in report
    assert verify_run(tmp_path) == ([], [])


def test_rerun_resumes_and_report_is_byte_identical(
    tmp_path: Path, fake_study: Study, cache: Path
) -> None:
    opts = RunOptions(tmp_path, cache)
    run_study(fake_study, opts, gold_script({})())
    write_report(tmp_path)
    first = (tmp_path / "report.md").read_bytes(), (tmp_path / "analysis.json").read_bytes()
    again = run_study(fake_study, opts, gold_script({})())
    assert again.evaluated == 0 and again.skipped == 54
    write_report(tmp_path)
    assert (
        (tmp_path / "report.md").read_bytes(),
        (tmp_path / "analysis.json").read_bytes(),
    ) == first


def test_crash_mid_variant_then_resume_gives_the_same_rows(
    tmp_path: Path, fake_study: Study, cache: Path
) -> None:
    whole = tmp_path / "whole"
    run_study(fake_study, RunOptions(whole, cache), gold_script({"Q8_0": 4})())

    class Crashing:
        def __init__(self) -> None:
            self.inner = gold_script({"Q8_0": 4})()

        def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
            backend = self.inner(variant, spec, study)
            if variant.level == "Q8_0":
                assert isinstance(backend, FakeBackend)
                backend.fail_on = lambda r: r.key.endswith("/3") or "arc" in r.key
            return backend

    part = tmp_path / "part"
    with pytest.raises(RuntimeError, match="scripted failure"):
        run_study(fake_study, RunOptions(part, cache), Crashing())
    with (part / SAMPLES).open("ab") as fh:  # a torn line, as from a kill mid-write
        fh.write(b'{"variant": "m@Q8_0", "ta')
    run_study(fake_study, RunOptions(part, cache), gold_script({"Q8_0": 4})())

    def content(run: Path) -> list[tuple[str, str, str, str]]:
        rows = read_rows(run / SAMPLES).rows
        return sorted((r["variant"], r["task"], r["item"], r["output"]) for r in rows)

    assert content(part) == content(whole)
    assert len(content(part)) == 54


def test_different_config_is_refused_unless_forced(tmp_path: Path, cache: Path) -> None:
    a = parse_study(fake_study_dict())
    run_study(a, RunOptions(tmp_path, cache), gold_script({})())
    before = (tmp_path / SAMPLES).read_bytes()
    with AppendLog(tmp_path / KLD, "a" * 64) as kld:  # as a run with local files leaves it
        kld.append({"variant": "m@F16", "corpus_sha256": "c", "chunk": 0})
    b = parse_study(fake_study_dict(warmup_runs=0))
    with pytest.raises(RunDirError, match="different study config"):
        run_study(b, RunOptions(tmp_path, cache), gold_script({})())
    assert (tmp_path / SAMPLES).read_bytes() == before
    run_study(b, RunOptions(tmp_path, cache, force_new=True), gold_script({})())
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("previous-")]
    assert len(aside) == 1 and (aside[0] / SAMPLES).read_bytes() == before
    assert (aside[0] / KLD).exists() and not (tmp_path / KLD).exists()
    assert verify_run(tmp_path) == ([], [])  # no row of the old run is left in the new one


def test_tampered_row_is_named_by_verify(tmp_path: Path, fake_study: Study, cache: Path) -> None:
    run_study(fake_study, RunOptions(tmp_path, cache), gold_script({})())
    lines = (tmp_path / SAMPLES).read_text().splitlines()
    row = json.loads(lines[4])
    row["output"] = "Z"
    lines[4] = json.dumps(row)
    (tmp_path / SAMPLES).write_text("\n".join(lines) + "\n")
    problems, _ = verify_run(tmp_path)
    assert problems == ["samples.jsonl:5: SHA-256 mismatch (row altered)"]
