"""The typed cross-model comparison of two variants of different models (``cross_model.py``
fills it; ``analysis.json`` keeps them under ``cross_model``, only when the run has two models
or more)."""

from __future__ import annotations

from quantmatrix.analysis.frozen import Frozen


class CrossModelPair(Frozen):
    """Accuracy of ``a`` minus accuracy of ``b`` (pp) on the multiple-choice items both
    answered, with its paired two-sided ``1 - alpha`` interval; ``a`` is of the model listed
    first in the study."""

    a: str  # variant id
    b: str  # variant id, of another model
    n: int  # shared items
    a_only: int  # right in a, wrong in b
    b_only: int  # right in b, wrong in a
    change: float
    low: float
    high: float
    alpha: float
    method: str  # tango (fixed design) | betting-cs (adaptive: the shared prefix in round order)
