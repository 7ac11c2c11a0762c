"""The decision layer: cost, memory, the matrix per memory budget, recommendations, summaries.

Everything here is a pure function of an ``Analysis`` (``analysis.build.analyze``) and
writes no files; the single entry point is :func:`quantmatrix.decision.build.decide`.
The report turns its result into plots, HTML and markdown (``report.decision_files``).
"""

from __future__ import annotations

GB = 1_000_000_000  # decimal gigabyte, as the report prints sizes


class DecisionError(ValueError):
    """Input the decision layer cannot use (unknown variant, bad memory budget); one line."""
