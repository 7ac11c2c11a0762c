"""Fuzzed study files and run logs (issue 17 item 4): the strategies and the one-case checks,
shared by tests/test_fuzz_study.py and tests/test_fuzz_runlog.py (CI sizes) and by
bench/campaign_fuzz.py (many more cases).

Every case goes through the real command line (typer's runner, in process, the fake backend
answering) and must end as a correct result or as one line ``error: ...`` with a non-zero
exit. An exception escaping a command fails the case: typer's runner hands it back instead
of the CLI's last-resort handler, so no case can pass by reaching that handler.
"""

from __future__ import annotations

import shutil
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from click.testing import Result
from hypothesis import strategies as st
from typer.testing import CliRunner

from quantmatrix.cli import USER_ERRORS, app
from quantmatrix.config import Study, load_study
from quantmatrix.pipeline import score
from quantmatrix.runlog import LOG_FILES, MANIFEST, RunLog
from quantmatrix.tasks.plan import plan_samples
from tests.conftest import fake_study_dict
from tests.test_generation_pipeline import LexicalScorer

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
MAX_ROWS = 400  # a valid study runs when its plan is at most this many samples in all


class FuzzFailure(AssertionError):
    """A case that neither ran correctly nor ended in one error line."""


@contextmanager
def lexical_scorer() -> Iterator[None]:
    """Generation outputs scored by the real lexical metrics (no scoring model is loaded)."""
    saved = score.make_scorer
    score.make_scorer = lambda spec: LexicalScorer()  # type: ignore[assignment,return-value]
    try:
        yield
    finally:
        score.make_scorer = saved


def judge(result: Result, listing: bool = False) -> str:
    """'ok' (exit 0) or 'error' (one line ``error: ...``, exit 2); ``listing``: exit 1 with
    lines of findings is ``verify``'s answer, 'findings'. Anything else raises FuzzFailure."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        trace = "".join(traceback.format_exception(exc))
        raise FuzzFailure(f"an exception reached the user:\n{trace}\noutput:\n{result.output}")
    if "Traceback" in result.output:
        raise FuzzFailure(f"a traceback in the output:\n{result.output}")
    if result.exit_code == 0:
        return "ok"
    if listing and result.exit_code == 1:
        return "findings"
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if not ln.startswith("warning: ")]
    if result.exit_code != 2 or len(errors) != 1 or not errors[0].startswith("error: "):
        raise FuzzFailure(f"exit {result.exit_code}, not one error line:\n{result.output}")
    return "error"


# ---------------------------------------------------------------- study files

ODD_TEXT = st.sampled_from(
    ["", " ", "\x00", "\ufeff", "é", "😀", "\u202e", "a\nb", "../..", "~", "NaN", "null",
     "*", "-", "%", "{}", "[", "\u0130", "ǅ", "Q4_K_M\x00", "F16 ", "f16", "mmlu\u200b"]
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**100]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12), ODD_TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=8,
)


def base_studies() -> list[dict[str, Any]]:
    """Studies that run on the fake backend: the tests' own, and each example with its
    models switched to the fake backend (sources and levels kept)."""
    gen = fake_study_dict(
        tasks=[
            {"kind": "mmlu", "per_subject": None, "n": 6},
            {"kind": "generation", "per_task": 1, "max_new_tokens": 16},
        ],
        sampling={"mode": "adaptive", "min_items": 2, "max_items": 6, "round": 2},
        timing={"multiple_choice": 2, "generation": 1, "warmup_runs": 0},
    )
    found = [fake_study_dict(), gen]
    for name in ("demo", "tiny", "hf"):
        data = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text(encoding="utf-8"))
        for model in data["models"]:  # three plain levels each, on the fake backend
            model["backend"] = "fake"
            model["levels"] = [lv for lv in model["levels"] if "-imat" not in lv][:3]
            model.pop("baseline", None)
        for task in data["tasks"]:  # a few items each
            task.update({"per_task": 1} if task["kind"] == "generation" else {"n": 4})
        found.append(data)
    return found


BASES = base_studies()


def paths(tree: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += paths(value, (*here, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += paths(value, (*here, i))
    return found


def _at(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


ODD_OF_TYPE: dict[type, st.SearchStrategy[Any]] = {
    bool: st.booleans(),
    int: st.sampled_from([0, 1, -1, 2, 3, 7, 2**31, 2**63, 10**30, -(10**30)]),
    float: st.sampled_from([0.0, -0.0, 1e-320, 1e308, float("inf"), float("nan"), -1.5]),
    str: st.one_of(ODD_TEXT, st.text(max_size=8), st.sampled_from(["a/b", "m@x", "x" * 5000])),
    list: st.sampled_from([[], [None]]),
}


def odd_of_type(draw: st.DrawFn, value: Any) -> Any:
    """A value of the same type as ``value`` at an edge: 0, -1, 2**63, inf, NaN, odd text."""
    strategy = ODD_OF_TYPE.get(type(value))
    if strategy is None:
        return draw(SCALARS)
    if isinstance(value, list) and value and draw(st.booleans()):
        return [*value, value[0]]  # an item twice
    return draw(strategy)


@st.composite
def mutated_study(draw: st.DrawFn) -> bytes:
    """A base study with one to three edits: a value replaced by one of its own type at an
    edge (0, -1, 2**63, inf, NaN, odd unicode) or of another type, a key removed, an unknown
    key added, a list item repeated, a value nested deep; dumped as YAML."""
    tree = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from(BASES))))  # a deep copy
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(tree)))
        ops = ["same type", "same type", "replace", "delete", "unknown key", "repeat", "nest"]
        op = draw(st.sampled_from(ops))
        if not path:
            tree = draw(VALUES) if op == "replace" else tree
            continue
        parent, last = _at(tree, path[:-1]), path[-1]
        if op == "same type":
            parent[last] = odd_of_type(draw, parent[last])
        elif op == "replace":
            parent[last] = draw(VALUES)
        elif op == "delete":
            del parent[last]
        elif op == "unknown key" and isinstance(parent[last], dict):
            parent[last][draw(st.text(min_size=1, max_size=8))] = draw(SCALARS)
        elif op == "repeat" and isinstance(parent, list):
            parent.append(parent[last])
        elif op == "nest":
            value = parent[last]
            for _ in range(draw(st.integers(1, 60))):
                value = [value] if draw(st.booleans()) else {"x": value}
            parent[last] = value
    return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False).encode("utf-8")


@st.composite
def mangled_text(draw: st.DrawFn) -> bytes:
    """A base study's YAML text with bytes overwritten, inserted or cut."""
    raw = bytearray(yaml.safe_dump(draw(st.sampled_from(BASES)), sort_keys=False).encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        junk = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b":", b"\t", b"\n- "]))
        if draw(st.booleans()):
            raw[at : at + len(junk)] = junk
        else:
            del raw[at : at + draw(st.integers(1, 40))]
    return bytes(raw)


DEEP = [b"[" * 5000 + b"]" * 5000, b"a: " + b"{a: " * 3000 + b"1" + b"}" * 3000]
STUDY_DOCUMENTS = st.one_of(
    mutated_study(),
    mutated_study(),
    mutated_study(),
    mutated_study(),
    mangled_text(),
    VALUES.map(lambda v: yaml.safe_dump(v, allow_unicode=True).encode("utf-8")),
    st.binary(max_size=64),
    st.sampled_from([b"", b"---\n", b"--- a\n--- b\n", b"\xff\xfe\x00m", *DEEP]),
)


def runnable(study: Study) -> bool:
    """Small enough, and on the fake backend in this process, to run in a fuzz case."""
    if any(m.backend != "fake" for m in study.models) or study.executor.kind != "local":
        return False
    if study.warmup_runs > 3 or study.timing.warmup_runs > 3:
        return False
    try:
        planned = len(plan_samples(study))
    except USER_ERRORS:
        return True  # the run stops on it in one line, at once
    variants = sum(len(m.levels) for m in study.models)
    timed = study.timing.multiple_choice + study.timing.generation if study.timing.enabled else 0
    return (planned + timed) * variants <= MAX_ROWS


def check_study(raw: bytes, work: Path, tally: Counter[str]) -> None:
    """Run a study file through ``quantmatrix run``: a correct run or one error line."""
    path = work / "study.yaml"
    path.write_bytes(raw)
    try:
        study: Study | None = load_study(path)
    except USER_ERRORS:
        study = None
    if study is not None and not runnable(study):
        tally["valid, too big or not on the fake backend: not run"] += 1
        return
    out = work / "run"
    args = ["run", str(path), "--out", str(out), "--cache", str(work / "cache"), "--quiet"]
    verdict = judge(runner.invoke(app, args))
    if study is None and verdict != "error":
        raise FuzzFailure(f"load_study refused it but run gave {verdict}")
    if verdict == "ok":
        assert study is not None
        check_complete(out, study)
        tally["valid: ran to a correct report"] += 1
    else:
        tally["refused in one line"] += 1


def check_complete(out: Path, study: Study) -> None:
    """The run's log holds every planned item per variant (fixed sampling) and verifies."""
    log = RunLog.load(out)
    if study.sampling.mode == "fixed":
        planned = {(s.task, s.item) for s in plan_samples(study)}
        for variant in {v.variant for v in log.variants}:
            got = {(r.task, r.item) for r in log.samples if r.variant == variant}
            if got != planned:
                raise FuzzFailure(f"{variant}: {len(got)} of {len(planned)} planned items")
    if judge(runner.invoke(app, ["verify", str(out)])) != "ok":
        raise FuzzFailure("a completed run does not verify")
    if not (out / "report.md").is_file() or not (out / "analysis.json").is_file():
        raise FuzzFailure("a completed run has no report")


def fresh(work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


__all__ = [
    "LOG_FILES",
    "MANIFEST",
    "STUDY_DOCUMENTS",
    "FuzzFailure",
    "check_study",
    "fresh",
    "judge",
    "lexical_scorer",
]
