"""The decision layer: cost, memory, the matrix per memory budget, recommendations, summaries.

Everything here is a pure function of an analysis dict (``report.render.build_analysis``); the
single entry points are :func:`quantmatrix.decision.build.build_decision` and
:func:`quantmatrix.decision.build.write_decision_outputs`.
"""

from __future__ import annotations

GB = 1_000_000_000  # decimal gigabyte, as the report prints sizes


class DecisionError(ValueError):
    """Input the decision layer cannot use (unknown variant, bad memory budget); one line."""
