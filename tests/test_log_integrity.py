"""Run-log integrity on the fake backend: each key once, rows of this run only, known schemas.

One clean run is made; each test corrupts a copy of its folder as a botched merge, a double
append or a copy of two run folders into one would, then checks what ``verify`` says, what the
analysis reads (the clean log's figures, or a one-line refusal) and what ``verify --repair``
leaves behind.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from quantmatrix.analysis.build import analyze
from quantmatrix.cli import app
from quantmatrix.config import parse_study
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.resume import logged_keys
from quantmatrix.runlog import (
    KLD,
    MANIFEST,
    SAMPLES,
    SCORES,
    VARIANTS,
    AppendLog,
    KldRow,
    ReadResult,
    RunLog,
    canonical_json,
    read_rows,
    row_digest,
    seal,
)
from quantmatrix.runlog.check import LogIntegrityError, check_file
from tests.conftest import fake_study_dict

runner = CliRunner()
ITEMS = 18  # per variant in fake_study_dict: 12 MMLU + 6 ARC


@dataclass(frozen=True)
class Clean:
    run: Path
    cache: Path
    analysis: dict[str, Any]


def analysis_of(run: Path) -> dict[str, Any]:
    return analyze(RunLog.load(run)).json_dict()


def figures(analysis: dict[str, Any]) -> dict[str, Any]:
    """Accuracy n, accuracy and deltas per variant and per task."""
    return {
        s["variant"]: {
            "n": s["n"],
            "correct": s["correct"],
            "accuracy": s["accuracy"],
            "delta_pp": s["delta_pp"],
            "tier": s["tier"],
            "tasks": {t: (b["n"], b["accuracy"], b["delta_pp"]) for t, b in s["tasks"].items()},
        }
        for s in analysis["variants"]
    }


def but_warnings(analysis: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in analysis.items() if k != "log_warnings"}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Clean:
    base = tmp_path_factory.mktemp("clean")
    run, cache = base / "run", base / "cache"
    run_study(parse_study(fake_study_dict()), RunOptions(run, cache))
    return Clean(run, cache, analysis_of(run))


@pytest.fixture
def run(clean: Clean, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(clean.run, copy)
    return copy


def lines(run: Path, name: str = SAMPLES) -> list[str]:
    return (run / name).read_text(encoding="utf-8").splitlines()


def append(run: Path, line: str, name: str = SAMPLES) -> int:
    """Append one line; return its line number."""
    with (run / name).open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return len(lines(run, name))


def resealed(line: str, **change: Any) -> str:
    """The row with ``change`` applied and a valid SHA-256 (as a careful forger would)."""
    row = json.loads(line)
    row.update(change)
    row["sha256"] = row_digest(row)
    return canonical_json(row)


def verify(run: Path, *extra: str) -> Result:
    return runner.invoke(app, ["verify", str(run), *extra])


def line_with(output: str, needle: str) -> str:
    found = [ln for ln in output.splitlines() if needle in ln]
    assert len(found) == 1, output
    return found[0]


def error_line(output: str) -> str:
    found = [ln for ln in output.splitlines() if ln.strip()]
    assert len(found) == 1, output
    assert found[0].startswith("error: ")
    return found[0]


def resume(clean: Clean, run: Path) -> int:
    opts = RunOptions(run, clean.cache)
    return run_study(parse_study(fake_study_dict()), opts).evaluated


def test_a_clean_run_verifies_and_its_rows_carry_the_config_hash(clean: Clean) -> None:
    result = verify(clean.run)
    assert result.exit_code == 0 and "check out" in result.output
    config = json.loads((clean.run / MANIFEST).read_text())["config_hash"]
    samples, variants = read_rows(clean.run / SAMPLES).rows, read_rows(clean.run / VARIANTS).rows
    assert len(samples) == 3 * ITEMS and len(variants) == 3
    assert {r["config"] for r in samples + variants} == {config}
    assert len({r["session"] for r in variants}) == 1
    assert clean.analysis["log_warnings"] == []
    assert [f["n"] for f in figures(clean.analysis).values()] == [ITEMS] * 3


def test_identical_duplicate_is_counted_once(clean: Clean, run: Path) -> None:
    dup = append(run, lines(run)[2])  # line 3 again, as a double append leaves it
    result = verify(run)
    assert result.exit_code == 1
    problem = line_with(result.output, f"samples.jsonl:{dup}:")
    assert "an identical copy for (" in problem and problem.endswith("already at line 3")
    assert "verify --repair" in result.output
    assert len(read_rows(run / SAMPLES).rows) == 3 * ITEMS + 1  # on disk twice
    analysis = analysis_of(run)
    assert figures(analysis) == figures(clean.analysis)
    assert but_warnings(analysis) == but_warnings(clean.analysis)
    [warning] = analysis["log_warnings"]
    assert warning.startswith(
        f"samples.jsonl: 1 duplicate row(s) ignored (line {dup} repeats line 3)"
    )
    report = runner.invoke(app, ["report", str(run)])
    assert report.exit_code == 0, report.output
    assert line_with(report.output, "duplicate row(s) ignored").startswith("warning: samples.jsonl")
    written = json.loads((run / "analysis.json").read_text())
    assert figures(written) == figures(clean.analysis)
    assert resume(clean, run) == 0


def conflicting(run: Path) -> int:
    third = lines(run)[2]
    return append(run, resealed(third, output=json.loads(third)["output"] + " (no, B)"))


def test_conflicting_duplicate_stops_every_reader_with_one_line(clean: Clean, run: Path) -> None:
    dup = conflicting(run)
    before = (run / SAMPLES).read_bytes()
    result = verify(run)
    assert result.exit_code == 1
    problem = line_with(result.output, f"samples.jsonl:{dup}:")
    assert "a different row for (" in problem and problem.endswith("already at line 3")
    with pytest.raises(LogIntegrityError) as caught:
        RunLog.load(run)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"samples.jsonl: lines 3 and {dup} are two different rows for (")
    assert f"run quantmatrix verify --repair {run} to keep line 3" in message
    report = runner.invoke(app, ["report", str(run)])
    assert report.exit_code == 2 and error_line(report.output) == f"error: {message}"
    recommend = runner.invoke(app, ["recommend", str(run), "--memory", "4GB"])
    assert recommend.exit_code == 2 and message in error_line(recommend.output)
    with pytest.raises(LogIntegrityError, match=f"lines 3 and {dup}"):
        resume(clean, run)
    assert (run / SAMPLES).read_bytes() == before  # no reader wrote to it


@pytest.mark.parametrize("kind", ["identical", "conflicting"])
def test_repair_keeps_the_first_row_and_the_old_file(clean: Clean, run: Path, kind: str) -> None:
    dup = conflicting(run) if kind == "conflicting" else append(run, lines(run)[2])
    before = (run / SAMPLES).read_bytes()
    result = verify(run, "--repair")
    assert result.exit_code == 0, result.output
    assert line_with(result.output, "removed").startswith(
        f"samples.jsonl: removed 1 row(s) (line {dup}); the old file is kept as "
        "samples.jsonl.before-repair-"
    )
    assert "check out" in result.output
    assert (run / SAMPLES).read_bytes() == (clean.run / SAMPLES).read_bytes()
    [kept] = run.glob("samples.jsonl.before-repair-*")
    assert kept.read_bytes() == before
    assert not list(run.glob("*.repair-tmp"))
    assert verify(run).exit_code == 0
    assert analysis_of(run) == clean.analysis
    again = verify(run, "--repair")
    assert again.exit_code == 0 and "nothing to repair" in again.output
    assert len(list(run.glob("samples.jsonl.before-repair-*"))) == 1


def test_foreign_variant_is_reported_and_ignored(clean: Clean, run: Path) -> None:
    line = append(run, resealed(lines(run)[2], variant="other@Q4_K_M", model="other"))
    result = verify(run)
    assert result.exit_code == 1
    assert line_with(result.output, f"samples.jsonl:{line}:") == (
        f"samples.jsonl:{line}: row of another run: variant 'other@Q4_K_M' is not in this "
        "run's manifest.json"
    )
    log = RunLog.load(run)
    assert len(log.samples) == 3 * ITEMS
    assert figures(analyze(log).json_dict()) == figures(clean.analysis)
    [warning] = log.warnings
    assert warning.startswith(f"samples.jsonl: 1 row(s) of another run ignored (line {line}:")
    assert verify(run, "--repair").exit_code == 0
    assert (run / SAMPLES).read_bytes() == (clean.run / SAMPLES).read_bytes()


def test_foreign_config_hash_is_reported_and_ignored(clean: Clean, run: Path) -> None:
    third = json.loads(lines(run)[2])  # a row of another run, for an item this run lacks
    line = append(run, resealed(lines(run)[2], config="0" * 64, item=third["item"] + "-x"))
    result = verify(run)
    assert result.exit_code == 1
    problem = line_with(result.output, f"samples.jsonl:{line}:")
    assert "row of another run: config hash 000000000000 is not this run's (" in problem
    log = RunLog.load(run)
    assert len(log.samples) == 3 * ITEMS  # counted, its variant would have n = 19
    assert but_warnings(analyze(log).json_dict()) == but_warnings(clean.analysis)
    assert verify(run, "--repair").exit_code == 0
    assert verify(run).exit_code == 0
    assert analysis_of(run) == clean.analysis


def test_resume_asks_again_a_sample_only_another_run_holds(clean: Clean, run: Path) -> None:
    rows = lines(run)
    (run / SAMPLES).write_text("\n".join(rows[:2] + rows[3:]) + "\n", encoding="utf-8")
    append(run, resealed(rows[2], config="0" * 64))
    assert resume(clean, run) == 1
    assert figures(analysis_of(run)) == figures(clean.analysis)


def test_rows_without_config_hash_or_session_are_accepted(clean: Clean, run: Path) -> None:
    for name in (SAMPLES, VARIANTS):  # as a log written before rows carried them
        old = [
            seal({k: v for k, v in json.loads(ln).items() if k not in ("config", "session")})
            for ln in lines(run, name)
        ]
        (run / name).write_text("".join(canonical_json(r) + "\n" for r in old), encoding="utf-8")
    assert not any("config" in r for r in read_rows(run / SAMPLES).rows)
    result = verify(run)
    assert result.exit_code == 0, result.output
    analysis = analysis_of(run)
    assert analysis["log_warnings"] == [] and figures(analysis) == figures(clean.analysis)
    dup = append(run, lines(run, VARIANTS)[0], VARIANTS)  # without a session: by SHA-256
    assert f"variants.jsonl:{dup}: an identical copy" in verify(run).output


def test_unknown_schema_version_is_reported_and_refused(run: Path) -> None:
    rows = lines(run)
    rows[2] = resealed(rows[2], schema=99)
    (run / SAMPLES).write_text("\n".join(rows) + "\n", encoding="utf-8")
    before = (run / SAMPLES).read_bytes()
    result = verify(run)
    assert result.exit_code == 1
    assert line_with(result.output, "samples.jsonl:3:") == (
        "samples.jsonl:3: schema version 99 is unknown (this quantmatrix reads 1, 2)"
    )
    with pytest.raises(LogIntegrityError, match=r"^samples\.jsonl:3: schema version 99"):
        RunLog.load(run)
    report = runner.invoke(app, ["report", str(run)])
    assert report.exit_code == 2
    assert error_line(report.output).startswith("error: samples.jsonl:3: schema version 99")
    repaired = verify(run, "--repair")
    assert repaired.exit_code == 1 and "nothing to repair" in repaired.output
    assert "leaves rows with a bad SHA-256 or an unknown schema version" in repaired.output
    assert (run / SAMPLES).read_bytes() == before and not list(run.glob("*.before-repair-*"))


def test_a_variant_resumed_in_a_second_session_verifies_clean(clean: Clean, run: Path) -> None:
    rows = lines(run)
    last = json.loads(rows[-1])["variant"]
    (run / SAMPLES).write_text("\n".join(rows[:-2]) + "\n", encoding="utf-8")
    assert resume(clean, run) == 2
    sessions = [r["session"] for r in read_rows(run / VARIANTS).rows if r["variant"] == last]
    assert len(sessions) == 2 and len(set(sessions)) == 2
    result = verify(run)
    assert result.exit_code == 0, result.output
    assert figures(analysis_of(run)) == figures(clean.analysis)


def sealed_lines(rows: list[dict[str, Any]]) -> ReadResult:
    sealed = [seal(r) for r in rows]
    return ReadResult(sealed, [], False, list(range(1, len(sealed) + 1)))


V, S = {"variant": "m@F16"}, {"variant": "m@F16", "task": "t", "item": "1"}


@pytest.mark.parametrize(
    ("name", "rows", "kept", "duplicates"),
    [
        (
            VARIANTS,
            [{**V, "session": "a", "w": 1}, {**V, "session": "b", "w": 2},
             {**V, "session": "a", "w": 1}, {**V, "session": "a", "w": 3}],
            [1, 2], [(1, 3, True), (1, 4, False)],
        ),
        (VARIANTS, [{**V, "w": 1}, {**V, "w": 2}, {**V, "w": 1}], [1, 2], [(1, 3, True)]),
        (
            SCORES,
            [{**S, "against": "reference", "m": 1}, {**S, "against": "baseline", "m": 1},
             {**S, "against": "reference", "m": 2}],
            [1, 2], [(1, 3, False)],
        ),
        (
            KLD,
            [{**V, "corpus_sha256": "c", "chunk": 0}, {**V, "corpus_sha256": "c", "chunk": 1},
             {**V, "corpus_sha256": "d", "chunk": 0}, {**V, "corpus_sha256": "c", "chunk": 0}],
            [1, 2, 3], [(1, 4, True)],
        ),
    ],
)  # fmt: skip
def test_keys_of_the_other_log_files(
    name: str, rows: list[dict[str, Any]], kept: list[int], duplicates: list[tuple[int, int, bool]]
) -> None:
    check = check_file(name, sealed_lines(rows), None)
    assert check.lines == kept
    assert [(d.first, d.line, d.identical) for d in check.duplicates] == duplicates


def kld_row(**change: Any) -> KldRow:
    return KldRow(**{
        **V, "model": "m", "level": "F16", "baseline": "m@F16", "corpus_sha256": "c",
        "corpus_source": "items", "chunk": 0, "n_tokens": 1, "kl_method": "top32", "kl": [0.1],
        "kl_topk": [0.1], "same_top": 1, "n_targets": 1, "nll_sum": 1.0, "base_nll_sum": 1.0,
        **change,
    })  # fmt: skip


def test_kld_resume_keys_count_a_chunk_once_and_refuse_a_conflict(tmp_path: Path) -> None:
    with AppendLog(tmp_path / KLD) as log:
        log.append(kld_row())
        log.append(kld_row())
    assert logged_keys(tmp_path, KldRow, None) == {("m@F16", "c", 0)}
    with AppendLog(tmp_path / KLD) as log:
        log.append(kld_row(kl=[0.2]))
    with pytest.raises(LogIntegrityError, match=r"^kld\.jsonl: lines 1 and 3 are two different"):
        logged_keys(tmp_path, KldRow, None)
