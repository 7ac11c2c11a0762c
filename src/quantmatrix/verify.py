"""``quantmatrix verify``: every row's SHA-256, what must hold across the rows of each log file
(``runlog/check.py``: one row per key, rows of this run only, known schema versions), and the
model files the manifest names. ``verify --repair`` removes duplicated rows and rows of another
run (:func:`repair_run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from quantmatrix.manifest import manifest_problems
from quantmatrix.runlog import LOG_FILES, read_manifest, read_rows
from quantmatrix.runlog.check import Repaired, check_file, repair_file, violations
from quantmatrix.runlog.lock import hold_run_dir


@dataclass(frozen=True)
class Verdict:
    problems: list[str]  # each names the file and line number, or the model file
    warnings: list[str]
    repairable: bool  # some problem is one that ``verify --repair`` removes


def check_run(run_dir: Path) -> Verdict:
    manifest = read_manifest(run_dir)
    problems: list[str] = []
    warnings: list[str] = []
    repairable = False
    for name in LOG_FILES:
        result = read_rows(run_dir / name)
        check = check_file(name, result, manifest)
        found = sorted([*result.problems, *violations(check)], key=lambda p: p.line)
        problems += [f"{name}:{p.line}: {p.problem}" for p in found]
        repairable = repairable or bool(check.removable)
        if result.torn_tail:
            warnings.append(
                f"{name}: the last line is incomplete (a crash mid-write); "
                "it is ignored and cut off when the run resumes"
            )
    problems += manifest_problems(run_dir)
    return Verdict(problems, warnings, repairable)


def verify_run(run_dir: Path) -> tuple[list[str], list[str]]:
    """(problems, warnings): problems name the file and line number of each bad row."""
    verdict = check_run(run_dir)
    return verdict.problems, verdict.warnings


def repair_run(run_dir: Path) -> list[Repaired]:
    """Keep the first row of each key and only this run's rows, in every log file.

    Lines with a bad SHA-256 or an unknown schema version are left as they are: the first are
    ignored when read, the second are for a newer quantmatrix to read.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with hold_run_dir(run_dir):
        manifest = read_manifest(run_dir)
        done = [repair_file(run_dir, name, manifest, stamp) for name in LOG_FILES]
    return [r for r in done if r is not None]
