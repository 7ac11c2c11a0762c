"""A fake-backend run of three models of different sizes, for the answer across models.

Each item has one difficulty ``u`` in [0, 1) shared by every model (hashed from its key, as
real models find the same questions hard); a variant answers right when ``u`` is below its
accuracy, and about 1 item in 20 (hashed from the variant and item) is flipped, so variants
both lose and gain answers against each other. Memory is reported per variant.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from quantmatrix.backends.base import Backend, GenerationRequest
from quantmatrix.backends.fake import FakeBackend
from quantmatrix.config import ModelSpec, Study, parse_study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.tasks.plan import plan_samples
from tests.conftest import fake_study_dict

MODELS: tuple[dict[str, Any], ...] = (
    {"name": "qwen-1.5b", "levels": ["Q8_0", "Q4_K_M", "Q3_K_S", "Q2_K"], "baseline": "Q8_0"},
    {"name": "qwen-0.5b", "levels": ["F16", "Q8_0", "Q4_K_M"]},
    {"name": "smollm2-135m", "levels": ["Q8_0", "Q4_K_M"], "baseline": "Q8_0"},
)
ACCURACY = {
    "qwen-1.5b@Q8_0": 0.62, "qwen-1.5b@Q4_K_M": 0.61, "qwen-1.5b@Q3_K_S": 0.53,
    "qwen-1.5b@Q2_K": 0.35, "qwen-0.5b@F16": 0.42, "qwen-0.5b@Q8_0": 0.42,
    "qwen-0.5b@Q4_K_M": 0.40, "smollm2-135m@Q8_0": 0.27, "smollm2-135m@Q4_K_M": 0.26,
}  # fmt: skip
MEMORY_GB = {
    "qwen-1.5b@Q8_0": 1.9, "qwen-1.5b@Q4_K_M": 1.2, "qwen-1.5b@Q3_K_S": 0.95,
    "qwen-1.5b@Q2_K": 0.8, "qwen-0.5b@F16": 1.3, "qwen-0.5b@Q8_0": 0.75,
    "qwen-0.5b@Q4_K_M": 0.55, "smollm2-135m@Q8_0": 0.2, "smollm2-135m@Q4_K_M": 0.15,
}  # fmt: skip
FLIP_EVERY = 20


def unit(*parts: str) -> float:
    """A number in [0, 1) hashed from ``parts``."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


def correct(variant: str, key: str) -> bool:
    """Whether ``variant`` answers item ``key`` right (the script's rule)."""
    right = unit("difficulty", key) < ACCURACY[variant]
    flipped = unit("flip", variant, key) < 1 / FLIP_EVERY
    return right != flipped


def study(mmlu: int = 120, arc: int = 60, **over: Any) -> Study:
    models = [{**m, "source": "fake", "backend": "fake"} for m in MODELS]
    tasks = [{"kind": "mmlu", "per_subject": None, "n": mmlu}, {"kind": "arc_challenge", "n": arc}]
    return parse_study(fake_study_dict(name="three-models", models=models, tasks=tasks, **over))


def factory(parsed: Study) -> Any:
    golds = {f"{s.task}|{s.item}": str(s.inputs["gold"]) for s in plan_samples(parsed)}

    def make(variant: Variant, spec: ModelSpec, study: Study) -> Backend:
        def reply(request: GenerationRequest) -> str:
            gold = golds.get(request.key)
            if gold is None:
                return "ready"
            if correct(variant.id, request.key):
                return f"The answer is {gold}"
            return f"The answer is {next(c for c in 'ABCD' if c != gold)}"

        memory = int(MEMORY_GB[variant.id] * 1e9)
        return FakeBackend(reply, memory_bytes=memory, decode_tps=400 / (1 + 4 * memory / 1e9))

    return make


def run_three_models(out: Path, cache: Path, **over: Any) -> Path:
    """Run the three-model study on the fake backend into ``out``; returns ``out``."""
    parsed = study(**over)
    outcome = run_study(parsed, RunOptions(out, cache), factory(parsed))
    assert not outcome.failed_variants
    return out
