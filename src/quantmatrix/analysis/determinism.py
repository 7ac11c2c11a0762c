"""The determinism check's figures, from its rows (``determinism.jsonl``; pure functions).

Per variant and per backend: how many of the items asked again on a fresh backend gave the
same output text, byte for byte, and (where both answers had them) the same option-letter
probabilities, bit for bit, each as a rate with its 95% Wilson interval (statsmodels); the
largest letter-probability difference; the items that differed. A re-run that ended in an error
is counted apart, as neither agreeing nor differing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from quantmatrix.analysis.frozen import Frozen
from quantmatrix.analysis.stats.describe import wilson_ci
from quantmatrix.runlog import DeterminismRow, RunLog

SHOWN_ITEMS = 5  # differing items named per variant


class Rate(Frozen):
    """``same`` of ``n`` compared answers, with the rate's 95% Wilson interval."""

    n: int
    same: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


class VariantDeterminism(Frozen):
    variant: str
    model: str
    level: str
    backend: str
    threads: int | None  # the evaluation's (embedded engine)
    rerun_threads: int | None
    group_sizes: tuple[int, ...]  # batch group sizes asked again
    outputs: Rate
    outputs_by_kind: dict[str, Rate]  # multiple_choice / generation
    letters: Rate | None  # None: no item had letter probabilities on both sides
    letters_max_abs_diff: float | None
    errors: int  # re-runs that ended in an error (left out of the rates)
    differing: tuple[str, ...]  # "task|item" of the first items that differed

    @property
    def all_same(self) -> bool:
        return self.outputs.same == self.outputs.n and (
            self.letters is None or self.letters.same == self.letters.n
        )


class BackendDeterminism(Frozen):
    backend: str
    variants: int
    outputs: Rate
    letters: Rate | None


class Determinism(Frozen):
    """The check over a run: per variant, per backend, and whether everything agreed."""

    variants: tuple[VariantDeterminism, ...]
    backends: tuple[BackendDeterminism, ...]
    all_same: bool


def rate(flags: Iterable[bool]) -> Rate:
    values = list(flags)
    n, same = len(values), sum(values)
    ci = wilson_ci(same, n)
    return Rate(
        n=n,
        same=same,
        rate=same / n if n else None,
        ci_low=None if ci is None else ci[0],
        ci_high=None if ci is None else ci[1],
    )


def _letters(rows: Sequence[DeterminismRow]) -> Rate | None:
    flags = [r.same_letters for r in rows if r.same_letters is not None]
    return rate(flags) if flags else None


def _variant(rows: Sequence[DeterminismRow]) -> VariantDeterminism:
    first = rows[0]
    ok = [r for r in rows if r.error is None]
    kinds = sorted({r.task_kind for r in ok})
    diffs = [r.letters_max_abs_diff for r in ok if r.letters_max_abs_diff is not None]
    differ = [f"{r.task}|{r.item}" for r in ok if not r.same_output or r.same_letters is False]
    return VariantDeterminism(
        variant=first.variant,
        model=first.model,
        level=first.level,
        backend=first.backend,
        threads=first.threads,
        rerun_threads=first.rerun_threads,
        group_sizes=tuple(sorted({r.group_size for r in rows})),
        outputs=rate(r.same_output for r in ok),
        outputs_by_kind={k: rate(r.same_output for r in ok if r.task_kind == k) for k in kinds},
        letters=_letters(ok),
        letters_max_abs_diff=max(diffs) if diffs else None,
        errors=len(rows) - len(ok),
        differing=tuple(sorted(differ)[:SHOWN_ITEMS]),
    )


def summarize_determinism(log: RunLog) -> Determinism | None:
    """The check's figures, in the study's variant order; None when the run has no rows."""
    if not log.determinism:
        return None
    order = [m.variant_id(lb) for m in log.study.models for lb in m.ordered_labels]
    by_variant: dict[str, list[DeterminismRow]] = {}
    for row in sorted(log.determinism, key=lambda r: r.key):
        by_variant.setdefault(row.variant, []).append(row)
    known = [v for v in order if v in by_variant] + sorted(set(by_variant) - set(order))
    variants = tuple(_variant(by_variant[v]) for v in known)
    backends = []
    for name in sorted({v.backend for v in variants}):
        rows = [r for r in log.determinism if r.backend == name and r.error is None]
        count = sum(v.backend == name for v in variants)
        backends.append(BackendDeterminism(
            backend=name, variants=count, outputs=rate(r.same_output for r in rows),
            letters=_letters(rows),
        ))  # fmt: skip
    return Determinism(
        variants=variants,
        backends=tuple(backends),
        all_same=all(v.all_same for v in variants),
    )
