"""The determinism check (pipeline/determinism.py) on the scripted fake backend: which items are
asked again (whole batch groups, a seeded rule the same for every level, none cut by an adaptive
round), rows that say what agreed, scripted nondeterminism found (text, letter probabilities),
the analysis and report, resume after a kill, the CLI flag outside the config hash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from quantmatrix.analysis.build import analyze
from quantmatrix.backends.base import Backend
from quantmatrix.backends.fake import Unsteady, create
from quantmatrix.cli import app
from quantmatrix.config import ConfigError, ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.determinism import asked_list, choose, groups_of, other_threads
from quantmatrix.report.render import write_report
from quantmatrix.runlog import DETERMINISM, RunLog, read_rows
from quantmatrix.tasks.plan import plan_samples
from quantmatrix.verify import verify_run
from tests.conftest import fake_study_dict

LEVELS = ["F16", "Q8_0", "Q4_K_M"]


def study(k: int = 4, **over: Any) -> Study:
    return parse_study(fake_study_dict(determinism={"items": k}, **over))


def rows(run: Path) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in r.items() if k not in ("sha256", "session")}
        for r in read_rows(run / DETERMINISM).rows
    ]


def test_each_level_asks_the_same_k_items_again_and_finds_them_the_same(
    tmp_path: Path, cache: Path
) -> None:
    out = run_study(study(4), RunOptions(tmp_path / "run", cache))
    log = RunLog.load(tmp_path / "run")
    assert out.rechecked == 12 == len(log.determinism) and not out.failed_variants
    items = {lv: [(r.task, r.item) for r in log.determinism if r.level == lv] for lv in LEVELS}
    assert items["F16"] == items["Q8_0"] == items["Q4_K_M"] and len(set(items["F16"])) == 4
    answered = {(r.task, r.item) for r in log.samples}
    assert set(items["F16"]) <= answered
    for r in log.determinism:
        first = next(s for s in log.samples if s.key == r.key)
        assert r.same_output and r.output == first.output and r.same_letters is True
        assert r.letters_max_abs_diff == 0.0 and r.group_size == 1 and r.backend == "fake"
        assert r.threads is None and r.rerun_threads is None  # no threads on the fake
    check = analyze(log).determinism
    assert check is not None and check.all_same
    assert [v.variant for v in check.variants] == [f"m@{lv}" for lv in LEVELS]
    assert check.backends[0].outputs.n == 12 and check.backends[0].outputs.same == 12
    report, _ = write_report(tmp_path / "run")
    text = report.read_text()
    assert "## Determinism" in text and "Every answer asked again was the same" in text
    assert "Not deterministic" not in text
    assert verify_run(tmp_path / "run") == ([], [])


def test_scripted_nondeterminism_is_found_item_by_item(tmp_path: Path, cache: Path) -> None:
    """Reopened backends answer differently: text on ARC items, letters on MMLU ones."""
    unsteady = Unsteady(
        text_on=lambda r: r.key.startswith("arc_challenge"),
        letters_on=lambda r: r.key.startswith("mmlu"),
        nudge=1e-12,
    )
    run = tmp_path / "run"
    run_study(study(6, timing={"enabled": False}), RunOptions(run, cache), unsteady)
    log = RunLog.load(run)
    assert len(log.determinism) == 18
    for r in log.determinism:
        if r.task == "arc_challenge":
            assert not r.same_output and r.output.endswith(" again") and r.same_letters
        else:
            assert r.same_output and r.same_letters is False
            assert r.letters_max_abs_diff == pytest.approx(1e-12, rel=1e-3)
    check = analyze(log).determinism
    assert check is not None and not check.all_same
    arc = sum(r.task == "arc_challenge" for r in log.determinism if r.level == "F16")
    f16 = check.variants[0]
    assert f16.outputs.n == 6 and f16.outputs.same == 6 - arc > 0
    assert f16.letters is not None and f16.letters.same == arc
    low, high = f16.outputs.ci_low, f16.outputs.ci_high
    assert low is not None and high is not None and low < f16.outputs.rate < high  # type: ignore[operator]
    report, _ = write_report(run)
    text = report.read_text()
    opening = text[: text.index("## Accuracy")]
    assert "**Not deterministic:**" in opening and f"{3 * arc} of 18 outputs" in opening
    assert "Some answers differed when asked again" in text


def test_only_letters_differing_is_reported_too(tmp_path: Path, cache: Path) -> None:
    unsteady = Unsteady(letters_on=lambda r: True, nudge=2**-40)
    run = tmp_path / "run"
    run_study(study(2, timing={"enabled": False}), RunOptions(run, cache), unsteady)
    check = analyze(RunLog.load(run)).determinism
    assert check is not None and not check.all_same
    assert all(v.outputs.same == v.outputs.n and v.letters and v.letters.same == 0
               for v in check.variants)  # fmt: skip


class Killing:
    """The registry's fake, killed (as a process is: KeyboardInterrupt) at the ``at``-th request
    of the re-run backends (a variant's second opening: the evaluation's, then this; no timing
    phase)."""

    def __init__(self, at: int | None) -> None:
        self.at, self.seen = at, 0
        self.opened: dict[str, int] = {}

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        self.opened[variant.id] = self.opened.get(variant.id, 0) + 1
        backend = create(variant, spec, study)
        if self.at is None or self.opened[variant.id] < 2:
            return backend
        inner = backend.generate

        def generate(reqs: Any) -> Any:
            for result in inner(reqs):
                self.seen += 1
                if self.seen >= self.at:  # type: ignore[operator]
                    raise KeyboardInterrupt("killed")
                yield result

        backend.generate = generate  # type: ignore[method-assign]
        return backend


def test_a_check_killed_midway_resumes_to_the_rows_of_an_unbroken_one(
    tmp_path: Path, cache: Path
) -> None:
    whole, part = tmp_path / "whole", tmp_path / "part"
    s = study(4, timing={"enabled": False})
    run_study(s, RunOptions(whole, cache), Killing(None))
    with pytest.raises(KeyboardInterrupt):
        run_study(s, RunOptions(part, cache), Killing(6))
    assert len(read_rows(part / DETERMINISM).rows) == 5
    with (part / DETERMINISM).open("ab") as fh:
        fh.write(b'{"variant": "m@Q8_0", "torn')  # killed mid-write
    again = run_study(s, RunOptions(part, cache), Killing(None))
    assert again.rechecked == 7 and again.evaluated == 0
    assert sorted(map(json.dumps, rows(part))) == sorted(map(json.dumps, rows(whole)))


def test_groups_are_whole_seeded_and_stable() -> None:
    s = study(4, batch_size=4)
    samples = plan_samples(s)
    listed, ends = asked_list(s, samples)
    assert listed == samples and ends == set()
    groups = groups_of(listed, ends, 4)
    assert [len(g.items) for g in groups] == [4, 4, 4, 4, 2]
    answered = {(x.task, x.item) for x in samples}
    ranked = sorted(groups, key=lambda g: g.rank(42))
    four = choose(groups, answered, 4, seed=42)
    took = len(four)
    assert sorted(four, key=lambda g: g.rank(42)) == ranked[:took]  # the rank order's head
    assert sum(len(g.items) for g in four) >= 4 > sum(len(g.items) for g in ranked[: took - 1])
    assert [g.items[0][0] for g in four] == sorted(g.items[0][0] for g in four)  # plan order
    seven = choose(groups, answered, 7, seed=42)
    assert all(g in seven for g in four)  # a larger K keeps what a smaller one chose
    assert choose(groups, answered, 4, seed=7) != four
    first = ranked[0]
    missing = answered - {(first.items[0][1].task, first.items[0][1].item)}
    assert first not in choose(groups, missing, 100, seed=42)  # a group with a gap is left out
    assert other_threads(2, None) == 1 and other_threads(1, None) == 2
    assert other_threads(16, None) == 8 and other_threads(16, 3) == 3


def test_adaptive_rounds_leave_out_groups_a_round_cut_in_two() -> None:
    s = study(100, batch_size=4, sampling={"mode": "adaptive", "min_items": 6, "max_items": 18,
                                           "round": 5})  # fmt: skip
    listed, ends = asked_list(s, plan_samples(s))
    assert ends == {6, 11, 16, 18}  # no generation items: the looks themselves
    starts = [g.items[0][0] for g in groups_of(listed, ends, 4)]
    assert starts == [0, 12, 16]  # 4-7 is cut at 6, 8-11 at 11; 16-17 ends the plan


def test_the_check_stays_out_of_the_config_hash_and_refuses_typos() -> None:
    plain = parse_study(fake_study_dict())
    assert study(5).config_hash() == plain.config_hash()
    assert "determinism" not in study(5).model_dump(mode="json")  # nor in manifest.json
    with pytest.raises(ConfigError, match=r"determinism\.itms"):
        parse_study(fake_study_dict(determinism={"itms": 3}))


def test_the_cli_flag_adds_the_check_to_a_run_and_a_rerun_without_it_resumes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(fake_study_dict()))
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = ["run", str(path), "--out", str(out), "--cache", str(cache), "--quiet"]
    cli = CliRunner()
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert not (out / DETERMINISM).exists()
    checked = cli.invoke(app, [*args, "--check-determinism", "3"])  # the same run, checked
    assert checked.exit_code == 0, checked.output
    assert len(read_rows(out / DETERMINISM).rows) == 9
    assert "## Determinism" in (out / "report.md").read_text()
    again = cli.invoke(app, args)
    assert again.exit_code == 0 and len(read_rows(out / DETERMINISM).rows) == 9
    bad = cli.invoke(app, [*args, "--check-determinism", "-2"])
    assert bad.exit_code == 2 and "--check-determinism -2" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
