"""``quantmatrix plan``: before anything runs, what a study will ask, download, build, and how
long it will take here.

``make_plan`` (estimate.py) is a pure function of the study, its samples and the ``Inputs``
(cache facts, speeds, quantizer speeds) that ``gather`` collects; ``render`` turns the plan
into text. ``opening_lines`` gives the sizes and their resolution, which ``run`` prints first.
"""

from __future__ import annotations

from quantmatrix.config import Study
from quantmatrix.plan.estimate import make_plan
from quantmatrix.plan.gather import GatherOptions, gather
from quantmatrix.plan.model import Inputs, Plan, Speeds
from quantmatrix.plan.render import render
from quantmatrix.plan.resolution import design_line, resolution_lines
from quantmatrix.tasks.base import Sample

__all__ = ["GatherOptions", "Inputs", "Plan", "Speeds", "gather", "make_plan", "opening_lines",
           "render"]  # fmt: skip


def opening_lines(study: Study, samples: list[Sample]) -> tuple[str, ...]:
    """The study's sizes and the resolution they give (``run`` prints them first)."""
    return (f"study {study.name}: {design_line(study, samples)}", *resolution_lines(study, samples))
