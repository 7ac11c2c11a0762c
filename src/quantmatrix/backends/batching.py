"""Batch groups: which requests a backend may decode together, fixed by the plan, never by timing.

A study numbers its samples by their position in the FULL plan (every variant asks the same
plan in the same order) and gives sample ``i`` the group ``i // batch_size``. A backend decodes
the requests of one group together, so every level of a model runs with the same batch shapes,
and two runs of one config give the same outputs whatever their thread counts.

Resume: a group of which some samples are already logged is asked again as a whole (the same
shapes as the first time) and the results already logged are dropped, not written twice
(``pipeline/resume.py``'s :func:`pending_groups`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from quantmatrix.backends.base import GenerationRequest

if TYPE_CHECKING:
    from quantmatrix.config import ModelSpec, Study

BATCHING_BACKENDS = ("llamacpp",)  # the backends that decode a group together


def batch_size_for(spec: ModelSpec, study: Study) -> int:
    """The study's batch size for a model on a batching backend, else 1 (a server or the fake
    backend answers one request at a time, so a resume need not ask a logged sample again)."""
    return study.batch_size if spec.backend in BATCHING_BACKENDS else 1


def group_of(index: int, batch_size: int) -> int | None:
    """The batch group of the plan's ``index``-th sample (None: ``batch_size`` 1, one at a time)."""
    return None if batch_size <= 1 else index // batch_size


def runs(requests: Sequence[GenerationRequest]) -> Iterator[list[GenerationRequest]]:
    """Consecutive requests sharing a batch group; a request without one is a run of its own."""
    run: list[GenerationRequest] = []
    for request in requests:
        if run and (request.batch_group is None or request.batch_group != run[0].batch_group):
            yield run
            run = []
        run.append(request)
    if run:
        yield run
