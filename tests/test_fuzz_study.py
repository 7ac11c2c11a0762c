"""Fuzzed study files (issue 17 item 4): random YAML, mutations of the tests' study and of
examples/*.yaml (wrong types, unknown keys, huge, negative, NaN and infinite numbers, odd
unicode, deep nesting, empty documents, binary junk), each through ``quantmatrix run`` on the
fake backend: a correct run, or one error line and a non-zero exit; never a traceback.
The long campaign is bench/campaign_fuzz.py; the cases are tests/fuzz_cases.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings

from tests.conftest import fake_study_dict
from tests.fuzz_cases import STUDY_DOCUMENTS, check_study, fresh, lexical_scorer

TALLY: Counter[str] = Counter()  # how the cases ended (bench/campaign_fuzz.py prints it)
CASES = 40  # 0.1-8 s each on the fake backend (2 busy cores); the campaign runs more


# a task listed twice made a fresh run's timing rows twice (its log did not verify)
GEN = {"kind": "generation", "per_task": 1, "max_new_tokens": 16}


def dump(**over: object) -> bytes:
    return yaml.safe_dump(fake_study_dict(**over), allow_unicode=True).encode("utf-8")


@pytest.fixture(scope="module", autouse=True)
def scorer() -> Iterator[None]:
    with lexical_scorer():
        yield


@settings(
    max_examples=CASES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=STUDY_DOCUMENTS)
@example(raw=b"\xff\xfe not UTF-8")  # was a UnicodeDecodeError traceback
@example(raw=b"a: " + b"{a: " * 3000 + b"1" + b"}" * 3000)  # was a RecursionError traceback
@example(raw=dump(decoding={"temperature": float("inf")}))  # ran, then analysis.json failed
@example(raw=dump(tasks=[{"kind": "x\x1cy"}]))  # an error "line" broken by \x1c in a value
@example(raw=dump(tasks=[GEN, GEN, {"kind": "mmlu", "n": 4}, {"kind": "mmlu", "n": 6}]))  # runs
@example(raw=dump(tasks=[GEN, {**GEN, "max_new_tokens": 8}]))  # one item asked two ways
def test_a_study_file_runs_or_is_refused_in_one_line(raw: bytes, tmp_path: Path) -> None:
    check_study(raw, fresh(tmp_path / "case"), TALLY)
