"""The ladder phase of a plan (pure): which files each model must still get or build, and how
long the quantizer takes for them at its measured seconds per billion weights. A quantized
source's lower levels are built from its F16 (``models/ladder.py``), so that comes first when
it is not in the cache, listed or not; importance matrices are listed, not timed."""

from __future__ import annotations

from quantmatrix.config import ModelSpec, Study
from quantmatrix.levels import check_level
from quantmatrix.plan.model import Inputs, ModelFacts, Range


def ladder_s(study: Study, inputs: Inputs) -> Range:
    total: float | None = 0.0
    for spec in study.models:
        facts = inputs.facts[spec.name]
        for _, s in _build_steps(spec, facts, inputs):
            total = None if total is None or s is None else total + s
        if facts.prepare_s is None:
            total = None
        elif total is not None:
            total += facts.prepare_s
    return Range.fixed(total)


def _build_steps(
    spec: ModelSpec, facts: ModelFacts, inputs: Inputs
) -> list[tuple[str, float | None]]:
    """(what, seconds) for each file the ladder phase must quantize for this model."""
    if spec.backend != "llamacpp":
        return []
    missing = [lv for lv in facts.levels if not lv.present and not lv.is_source]
    steps: list[str] = []
    listed = [lv.level for lv in missing]
    if missing and not facts.float_parent_present and "F16" not in listed:
        steps.append("F16")  # lower levels of a quantized source are built from its F16
    steps += [lv.level for lv in missing]
    if steps and not facts.imatrix_present:  # some level is built with the model's matrix
        steps.append("imatrix")
    q = inputs.quantize.s_per_billion if inputs.quantize else {}

    def seconds(step: str) -> float | None:
        if step == "imatrix" or facts.n_params is None:
            return None
        per = q.get(check_level(step).base)
        return None if per is None else per * facts.n_params / 1e9

    return [(step, seconds(step)) for step in steps]


def build_lines(study: Study, inputs: Inputs) -> tuple[str, ...]:
    out: list[str] = []
    for spec in study.models:
        facts = inputs.facts[spec.name]
        out += [f"{spec.name}: {line}" for line in facts.prepare]
        steps = _build_steps(spec, facts, inputs)
        listed = set(spec.levels)
        names = [
            "importance matrix (llama-imatrix, time not estimated)" if s == "imatrix"
            else f"{s} (parent of the lower levels, not evaluated)" if s not in listed else s
            for s, _ in steps
        ]  # fmt: skip
        if names:
            out.append(f"{spec.name}: " + ", ".join(names))
    return tuple(out)


def download_lines(inputs: Inputs) -> tuple[str, ...]:
    return tuple(f"{name}: {line}" for name, f in inputs.facts.items() for line in f.downloads)
