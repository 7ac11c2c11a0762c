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
from hypothesis import HealthCheck, given, settings

from tests.fuzz_cases import STUDY_DOCUMENTS, check_study, fresh, lexical_scorer

TALLY: Counter[str] = Counter()
CASES = 40  # 0.1-8 s each on the fake backend (2 busy cores); the campaign runs more


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
def test_a_study_file_runs_or_is_refused_in_one_line(raw: bytes, tmp_path: Path) -> None:
    check_study(raw, fresh(tmp_path / "case"), TALLY)


def test_the_fuzzer_reached_both_outcomes() -> None:
    """Run after the property above (file order): both kinds of outcome were exercised."""
    assert TALLY["refused in one line"] > 0 and TALLY["valid: ran to a correct report"] > 0, TALLY
