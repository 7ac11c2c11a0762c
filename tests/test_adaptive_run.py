"""Adaptive sampling in the study runner: rounds of one order, stops from the log, resume."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from quantmatrix.backends.base import Backend, GenerationRequest
from quantmatrix.backends.fake import FakeBackend
from quantmatrix.config import ConfigError, ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.adaptive import round_plan, targets
from quantmatrix.runlog import SAMPLES, VARIANTS, SampleRow, load_rows, read_rows
from quantmatrix.tasks.plan import plan_samples
from tests.conftest import fake_study_dict

SAMPLING = {"mode": "adaptive", "min_items": 100, "max_items": 400, "round": 50}


def adaptive_study(**over: object) -> Study:
    data = fake_study_dict(
        tasks=[
            {"kind": "mmlu", "per_subject": None, "n": 300},
            {"kind": "arc_challenge", "n": 100},
        ],
        sampling=SAMPLING,
        batch_size=4,
    )
    data.update(over)
    return parse_study(data)


class Killed(BaseException):
    """Stands in for a kill: nothing in the runner catches it."""


class Factory:
    """F16 and Q8_0 answer every item right; Q4_K_M gets every third wrong. After
    ``kill_after`` requests in all, the next one raises :class:`Killed`."""

    def __init__(self, kill_after: int | None = None) -> None:
        self.kill_after = kill_after
        self.asked: dict[str, list[str]] = defaultdict(list)
        self.count = 0

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        golds = {f"{s.task}|{s.item}": s.inputs["gold"] for s in plan_samples(study)}
        order = sorted(golds)
        wrong = 3 if variant.level == "Q4_K_M" else 0

        def reply(request: GenerationRequest) -> str:
            if request.key not in golds:
                return "ready"
            self.count += 1
            if self.kill_after is not None and self.count > self.kill_after:
                raise Killed
            self.asked[variant.id].append(request.key)
            if wrong and order.index(request.key) % wrong == 0:
                return "The answer is Z"
            return f"The answer is {golds[request.key]}"

        return FakeBackend(reply)


def _keys(out: Path) -> dict[str, list[str]]:
    by: dict[str, list[str]] = defaultdict(list)
    for row in read_rows(out / SAMPLES).rows:
        by[row["variant"]].append(f"{row['task']}|{row['item']}")
    return dict(by)


def test_rounds_stop_each_variant_where_its_tier_is_decided(tmp_path: Path, cache: Path) -> None:
    study = adaptive_study()
    run_study(study, RunOptions(tmp_path, cache), Factory())
    keys = _keys(tmp_path)
    order = [f"{s.task}|{s.item}" for s in round_plan(study, plan_samples(study)).order]
    assert len(order) == 400
    # a 33pp drop is unacceptable beyond doubt at the first look
    assert len(keys["m@Q4_K_M"]) == 100
    # identical answers need more items to rule out a 3pp loss, never more than max_items
    q8 = len(keys["m@Q8_0"])
    assert 100 < q8 <= 400 and q8 in study.sampling.looks(400)
    assert len(keys["m@F16"]) == q8
    # every level ran a prefix of one order, in that order (each round's items in plan order)
    for got in keys.values():
        assert sorted(got) == sorted(order[: len(got)])
    # nothing is pending once every variant has stopped
    assert targets(study, round_plan(study, plan_samples(study)), _rows(tmp_path)) == {}
    # one variants row per variant and round that asked something
    sessions = {(r["variant"], r["session"]) for r in read_rows(tmp_path / VARIANTS).rows}
    assert len(sessions) == len(read_rows(tmp_path / VARIANTS).rows)
    assert {v for v, _ in sessions} == {"m@F16", "m@Q8_0", "m@Q4_K_M"}


def _rows(out: Path) -> list[SampleRow]:
    return list(load_rows(out, SampleRow, None).rows)


@pytest.mark.parametrize("kill_after", [37, 230, 455])
def test_kill_and_resume_stop_at_the_same_items(
    tmp_path: Path, cache: Path, kill_after: int
) -> None:
    study = adaptive_study()
    whole = tmp_path / "whole"
    run_study(study, RunOptions(whole, cache), Factory())
    broken = tmp_path / "broken"
    with pytest.raises(Killed):
        run_study(study, RunOptions(broken, cache), Factory(kill_after))
    again = Factory()
    run_study(study, RunOptions(broken, cache), again)
    want, got = _keys(whole), _keys(broken)
    assert {v: sorted(k) for v, k in got.items()} == {v: sorted(k) for v, k in want.items()}
    assert all(len(k) == len(set(k)) for k in got.values())  # nothing asked twice is logged twice


def test_same_config_same_items(tmp_path: Path, cache: Path) -> None:
    study = adaptive_study()
    run_study(study, RunOptions(tmp_path / "a", cache), Factory())
    run_study(study, RunOptions(tmp_path / "b", cache), Factory())
    assert _keys(tmp_path / "a") == _keys(tmp_path / "b")
    other = adaptive_study(selection_seed=7)
    run_study(other, RunOptions(tmp_path / "c", cache), Factory())
    assert _keys(tmp_path / "c")["m@Q4_K_M"] != _keys(tmp_path / "a")["m@Q4_K_M"]


def test_fixed_mode_is_unchanged(tmp_path: Path, cache: Path) -> None:
    study = adaptive_study(sampling={"mode": "fixed"})
    run_study(study, RunOptions(tmp_path, cache), Factory())
    assert {v: len(k) for v, k in _keys(tmp_path).items()} == {
        "m@F16": 400,
        "m@Q8_0": 400,
        "m@Q4_K_M": 400,
    }


def test_sampling_keeps_old_hashes_and_refuses_bad_values() -> None:
    plain = parse_study(fake_study_dict())
    fixed = parse_study(fake_study_dict(sampling={"mode": "fixed"}))
    assert plain.config_hash() == fixed.config_hash()  # runs from before `sampling:` resume
    assert adaptive_study().config_hash() != fixed.config_hash()
    with pytest.raises(ConfigError, match="min_items <= max_items"):
        parse_study(fake_study_dict(sampling={"mode": "adaptive", "min_items": 9, "max_items": 3}))
    with pytest.raises(ConfigError, match=r"sampling\.mode"):
        parse_study(fake_study_dict(sampling={"mode": "sometimes"}))
