"""A run as read back from its folder: typed rows of every log file, the manifest, the study."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from quantmatrix.config import Study
from quantmatrix.runlog.check import load_rows
from quantmatrix.runlog.files import MANIFEST, read_manifest
from quantmatrix.runlog.rows import (
    ContextMemoryRow,
    DeterminismRow,
    KldRow,
    LongContextRow,
    SampleRow,
    ScoreRow,
    TimingRow,
    VariantRow,
)


@dataclass(frozen=True)
class RunLog:
    """Everything a run wrote, as read back from its folder.

    ``samples`` are the study's own items; the long-context probe's many-shot questions
    (``task_kind`` many_shot) are in ``many_shot``, so no accuracy, timing or letter figure of
    the study counts them by accident."""

    samples: list[SampleRow]
    variants: list[VariantRow]
    manifest: dict[str, Any]
    scores: list[ScoreRow] = field(default_factory=list)
    kld: list[KldRow] = field(default_factory=list)
    timing: list[TimingRow] = field(default_factory=list)  # the single-stream subset's rows
    determinism: list[DeterminismRow] = field(default_factory=list)  # items asked again
    many_shot: list[SampleRow] = field(default_factory=list)  # long-context probe questions
    long_context: list[LongContextRow] = field(default_factory=list)  # its token KL rows
    warnings: list[str] = field(default_factory=list)  # rows ignored on read, one line a file
    memory: list[ContextMemoryRow] = field(default_factory=list)  # memory vs context

    @classmethod
    def load(cls, run_dir: Path) -> RunLog:
        """Every file through ``check.load_rows``: each key once, rows of this run only, typed.

        Raises ``LogIntegrityError`` (one line) for a conflicting duplicate, a row of an unknown
        schema version or a row that is not of its file's type.
        """
        manifest = read_manifest(run_dir)
        if manifest is None:
            raise FileNotFoundError(f"{run_dir} holds no run ({MANIFEST} missing)")
        samples = load_rows(run_dir, SampleRow, manifest)
        variants = load_rows(run_dir, VariantRow, manifest)
        scores = load_rows(run_dir, ScoreRow, manifest)
        kld = load_rows(run_dir, KldRow, manifest)
        timing = load_rows(run_dir, TimingRow, manifest)
        again = load_rows(run_dir, DeterminismRow, manifest)
        memory = load_rows(run_dir, ContextMemoryRow, manifest)
        long_context = load_rows(run_dir, LongContextRow, manifest)
        return cls(
            samples=[r for r in samples.rows if r.task_kind != "many_shot"],
            variants=variants.rows,
            manifest=manifest,
            scores=scores.rows,
            kld=kld.rows,
            timing=timing.rows,
            determinism=again.rows,
            many_shot=[r for r in samples.rows if r.task_kind == "many_shot"],
            long_context=long_context.rows,
            warnings=[
                *samples.warnings,
                *variants.warnings,
                *scores.warnings,
                *kld.warnings,
                *timing.warnings,
                *again.warnings,
                *memory.warnings,
                *long_context.warnings,
            ],
            memory=memory.rows,
        )

    @cached_property
    def study(self) -> Study:
        """The run's study, parsed once from ``manifest.json``."""
        return Study.model_validate(self.manifest["config"])

    def iter_samples(self, variant: str) -> Iterator[SampleRow]:
        return (r for r in self.samples if r.variant == variant)
