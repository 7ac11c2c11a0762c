"""The probes section of an analysis: context-length sensitivity (``long_context.py``,
``many_shot.py``) and batch sensitivity (``batch.py``); None when the run has neither."""

from __future__ import annotations

from quantmatrix.analysis.batch import batch_sensitivity
from quantmatrix.analysis.long_context import current_rows, kl_levels
from quantmatrix.analysis.many_shot import many_shot_levels
from quantmatrix.analysis.probes_model import LongContext, Probes
from quantmatrix.runlog import RunLog


def long_context(log: RunLog) -> LongContext | None:
    rows = current_rows(log.long_context)
    if not rows and not log.many_shot:
        return None
    docs = sorted({(r.document, r.document_id) for r in rows})
    return LongContext(
        corpus_source=rows[0].corpus_source if rows else None,
        documents=tuple(i for _, i in docs),
        cap=max((r.document_tokens for r in rows), default=None),
        kl_method=rows[0].kl_method if rows else None,
        levels=kl_levels(log.study, rows),
        many_shot=many_shot_levels(log.study, log.many_shot),
    )


def probes(log: RunLog) -> Probes | None:
    lc, batch = long_context(log), batch_sensitivity(log)
    if lc is None and batch is None:
        return None
    return Probes(long_context=lc, batch=batch)
