"""``compare`` of two runs like the published cross-phase check (analysis/paired_runs.py): the
paired intervals against known answers (Student's sleep data; the paired change method), two
fake-backend runs that agree and two that differ (accuracy and generation metrics), the
generation metrics among compare's figures, and the CLI's lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from scipy import stats as sps
from typer.testing import CliRunner

from quantmatrix.analysis.build import analyze
from quantmatrix.analysis.paired_runs import accuracy_agreement, mean_difference, pair_runs
from quantmatrix.analysis.stats.paired import PairedCounts, interval_of_counts
from quantmatrix.backends.base import Backend, GenerationRequest
from quantmatrix.backends.fake import FakeBackend
from quantmatrix.cli_decide import register
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.decision.compare import compare
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.runlog import RunLog
from quantmatrix.tasks.plan import plan_samples
from tests.conftest import fake_study_dict
from tests.test_generation_pipeline import REFERENCES, LexicalScorer

# Student (1908) / Cushny & Peebles: extra sleep (hours) of 10 patients under two drugs (R's
# `sleep`); t.test(extra ~ group, paired = TRUE) gives the mean difference 1.58 (drug 2 - drug
# 1) with the 95% interval 0.7001142 to 2.4598858.
DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_the_paired_t_interval_is_the_textbook_one() -> None:
    a = {f"p{i}": x for i, x in enumerate(DRUG_1)}
    b = {f"p{i}": x for i, x in enumerate(DRUG_2)}
    got = mean_difference("sleep", a, b, alpha=0.05)
    assert got.n == 10 and got.change == pytest.approx(1.58)
    assert (got.low, got.high) == pytest.approx((0.7001142, 2.4598858), abs=1e-7)
    assert got.agree is False  # the interval excludes 0
    scipy_ci = sps.ttest_rel(DRUG_2, DRUG_1).confidence_interval(0.95)
    assert (got.low, got.high) == pytest.approx((scipy_ci.low, scipy_ci.high))
    same = mean_difference("sleep", a, a, alpha=0.05)
    assert (same.change, same.low, same.high, same.agree) == (0.0, 0.0, 0.0, True)
    assert mean_difference("x", {"k": 1.0}, {"k": 2.0}, 0.05).agree is None  # one item


def test_the_accuracy_interval_is_the_paired_change_on_the_shared_items() -> None:
    cells = PairedCounts(both=59, gained=6, lost=16, neither=80)  # Fagerland et al.'s table
    base = [True] * 59 + [False] * 6 + [True] * 16 + [False] * 80
    var = [True] * 59 + [True] * 6 + [False] * 16 + [False] * 80
    a = {f"i{k}": x for k, x in enumerate(base)} | {"only-a": True}
    b = {f"i{k}": x for k, x in enumerate(var)} | {"only-b": False}
    got = accuracy_agreement(a, b, 0.05)
    want = interval_of_counts(cells, 0.05, "tango")
    assert got.n == 161 and round(got.change or 0, 2) == -6.21
    assert (got.low, got.high) == (want.low, want.high) and got.high is not None
    assert got.high < 0 and got.agree is False


def compare_study() -> Study:
    tasks = [
        {"kind": "mmlu", "per_subject": None, "n": 24},
        {"kind": "arc_challenge", "n": 16},
        {"kind": "generation", "per_task": 2, "max_new_tokens": 64},
    ]
    return parse_study(fake_study_dict(tasks=tasks, timing={"enabled": False}))


def golds() -> dict[str, str]:
    mc = [s for s in plan_samples(compare_study()) if s.kind == "multiple_choice"]
    return {f"{s.task}|{s.item}": s.inputs["gold"] for s in mc}


class Scripted:
    """Fake backends: every MC answer right (``wrong`` levels: wrong on every other item in
    plan order, or on all when ``all_wrong``), generation = the reference (``loop`` levels: a
    degenerate loop)."""

    def __init__(self, wrong: tuple[str, ...] = (), loop: tuple[str, ...] = (),
                 all_wrong: bool = False) -> None:  # fmt: skip
        self.wrong, self.loop, self.all_wrong = wrong, loop, all_wrong
        self.golds = golds()
        self.order = sorted(self.golds)

    def __call__(self, variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        def reply(request: GenerationRequest) -> str:
            ref = REFERENCES.get(request.prompt)
            if ref is not None:
                return "the same thing " * 12 if variant.level in self.loop else ref
            gold = self.golds.get(request.key)
            if gold is None:
                return "ready"
            odd = self.order.index(request.key) % 2 == 1 or self.all_wrong
            if variant.level in self.wrong and odd:
                return "not sure"
            return f"The answer is {gold}"

        return FakeBackend(reply)


def fake_run(folder: Path, factory: Scripted) -> Path:
    cache = folder.parent / "cache"
    run_study(compare_study(), RunOptions(folder, cache), factory, LexicalScorer())
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    worse = Scripted(wrong=("Q4_K_M",), all_wrong=True, loop=("Q8_0",))
    return {
        "a": fake_run(root / "a", Scripted(wrong=("Q4_K_M",))),
        "same": fake_run(root / "same", Scripted(wrong=("Q4_K_M",))),
        "worse": fake_run(root / "worse", worse),
    }


def test_two_runs_that_agree(runs: dict[str, Path]) -> None:
    got = pair_runs(RunLog.load(runs["a"]), RunLog.load(runs["same"]))
    assert [v.variant for v in got.variants] == ["m@F16", "m@Q8_0", "m@Q4_K_M"]
    for v in got.variants:
        assert v.verdict == "agree within intervals"
        names = [s.signal for s in v.signals]
        assert names == ["accuracy", "bertscore_f1", "coherence", "rouge_l", "key_avg"]
        acc = v.signals[0]
        assert acc.n == 40 and acc.change == 0.0 and acc.low is not None and acc.low < 0
        assert all(s.n == 10 and s.change == 0.0 for s in v.signals[1:])


def test_two_runs_that_differ_in_accuracy_and_in_generation(runs: dict[str, Path]) -> None:
    got = {v.variant: v for v in pair_runs(RunLog.load(runs["a"]), RunLog.load(runs["worse"]))
           .variants}  # fmt: skip
    assert got["m@F16"].verdict == "agree within intervals"
    q4, q8 = got["m@Q4_K_M"], got["m@Q8_0"]
    assert q4.verdict == "differ" and q8.verdict == "differ"
    acc = q4.signals[0]
    assert acc.change == pytest.approx(-50.0) and acc.high is not None and acc.high < 0
    assert q8.signals[0].agree is True  # Q8_0's accuracy agrees; its generation does not
    rouge = next(s for s in q8.signals if s.signal == "rouge_l")
    assert rouge.change is not None and rouge.change < 0 and rouge.agree is False


def test_compare_shows_generation_metrics_and_the_paired_verdicts(runs: dict[str, Path]) -> None:
    a, worse = RunLog.load(runs["a"]), RunLog.load(runs["worse"])
    res = compare(analyze(a), analyze(worse), 5.0, pair_runs(a, worse))
    q8 = next(r for r in res.rows if r.variant == "m@Q8_0")
    assert {"bertscore_f1", "coherence", "rouge_l"} <= set(q8.metrics)
    assert q8.metrics["rouge_l"].flagged and q8.metrics["rouge_l"].unit == "%"
    assert any(f.startswith("m@Q8_0: rouge_l diverges") for f in res.flags)
    assert res.paired is not None and len(res.paired.variants) == 3
    app = typer.Typer()
    register(app)
    cli = CliRunner()
    out = cli.invoke(app, ["compare", str(runs["a"]), str(runs["worse"])]).output
    assert "m@Q4_K_M: differ (accuracy -50.0pp [" in out
    assert "m@F16: agree within intervals (accuracy +0.0pp" in out
    assert "rouge_l" in out and "paired t" in out
    same = cli.invoke(app, ["compare", str(runs["a"]), str(runs["same"])])
    assert same.exit_code == 0 and same.output.count("agree within intervals") == 3
    bad = cli.invoke(app, ["compare", str(runs["a"]), str(runs["same"]), "--alpha", "2"])
    assert bad.exit_code == 2 and bad.output.startswith("error: --alpha 2")
