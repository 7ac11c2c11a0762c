"""The long fuzz campaign of issue 17 item 4: many more cases than the tests run in CI.

Run: ``python bench/campaign_fuzz.py [--studies 600] [--logs 300] [--gguf 5000] [--seed 1]``.
The cases are the tests' own (tests/fuzz_cases.py, tests/fuzz_logs.py, tests/test_gguf_corrupt.py):
study files through ``quantmatrix run`` on the fake backend, damaged run folders under every
command, mangled GGUF files through the header check. Hypothesis generates them (no shrinking,
no example database); a failing case is counted and kept, and the campaign goes on. Prints,
per fuzzer, the cases run, how each ended and the time taken, then the failures (should be 0);
exits 1 if there were any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz_cases import STUDY_DOCUMENTS, check_study, fresh, lexical_scorer  # noqa: E402
from tests.fuzz_logs import COMMANDS, check_log_case, damaged, make_template  # noqa: E402
from tests.test_gguf_corrupt import check_mangled, write_small_gguf  # noqa: E402

Failures = list[tuple[str, str]]


def campaign(
    name: str, n: int, strategy: st.SearchStrategy[Any], case: Callable[[Any, Counter[str]], None],
    at: int,
) -> tuple[Counter[str], Failures, float]:  # fmt: skip
    """Run ``case`` on ``n`` values of ``strategy``; outcomes counted, failures kept."""
    tally: Counter[str] = Counter()
    failures: Failures = []

    @seed(at)
    @settings(
        max_examples=n, deadline=None, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(strategy)
    def run(value: Any) -> None:
        try:
            case(value, tally)
        except Exception as exc:  # a failing case: counted, kept, and the campaign goes on
            tally["FAILED"] += 1
            failures.append((repr(value)[:300], f"{type(exc).__name__}: {exc}"[-2000:]))

    start = time.perf_counter()
    run()
    return tally, failures, time.perf_counter() - start


def show(name: str, tally: Counter[str], failures: Failures, seconds: float) -> None:
    total = sum(tally.values())
    print(f"{name}: {total} cases in {seconds:.0f} s ({seconds / max(total, 1):.2f} s each)")
    for outcome, count in sorted(tally.items()):
        print(f"  {count:>6}  {outcome}")
    for value, why in failures[:5]:
        print(f"  FAILED on {value}\n    {why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=600, help="study files")
    parser.add_argument("--logs", type=int, default=300, help="damaged run folders")
    parser.add_argument("--gguf", type=int, default=5000, help="mangled GGUF files")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="quantmatrix-fuzz-"))
    failed = 0
    with lexical_scorer():
        small = write_small_gguf(work / "small.gguf").read_bytes()
        results = [
            campaign(
                "gguf", args.gguf, st.data(),
                lambda data, t: t.update([check_mangled(small, data, fresh(work / "g"))]),
                args.seed,
            ),
            campaign(
                "study", args.studies, STUDY_DOCUMENTS,
                lambda raw, t: check_study(raw, fresh(work / "s"), t), args.seed,
            ),
        ]  # fmt: skip
        template = make_template(work / "template")
        results.append(
            campaign(
                "logs", args.logs, st.tuples(damaged(), st.sampled_from(COMMANDS)),
                lambda fc, t: check_log_case(template, fc[0], fc[1], fresh(work / "l"), t),
                args.seed,
            )
        )  # fmt: skip
    names = ["GGUF files (mangled header, cut, bytes appended)", "study files", "run logs"]
    for name, (tally, failures, seconds) in zip(names, results, strict=True):
        show(name, tally, failures, seconds)
        failed += len(failures)
    total = sum(sum(t.values()) for t, _, _ in results)
    print(f"all: {total} cases, failures={failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
