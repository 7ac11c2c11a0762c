"""``quantmatrix verify``: every row's SHA-256, and the model files the manifest names."""

from __future__ import annotations

from pathlib import Path

from quantmatrix.manifest import manifest_problems
from quantmatrix.runlog import KLD, SAMPLES, SCORES, VARIANTS, read_rows


def verify_run(run_dir: Path) -> tuple[list[str], list[str]]:
    """(problems, warnings): problems name the file and line number of each bad row."""
    problems: list[str] = []
    warnings: list[str] = []
    for name in (SAMPLES, VARIANTS, SCORES, KLD):
        result = read_rows(run_dir / name)
        problems += [f"{name}:{p.line}: {p.problem}" for p in result.problems]
        if result.torn_tail:
            warnings.append(
                f"{name}: the last line is incomplete (a crash mid-write); "
                "it is ignored and cut off when the run resumes"
            )
    problems += manifest_problems(run_dir)
    return problems, warnings
