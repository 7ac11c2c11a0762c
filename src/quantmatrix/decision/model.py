"""The typed, frozen decision (:func:`quantmatrix.decision.build.decide`) and its policy."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from quantmatrix.analysis.frozen import Frozen
from quantmatrix.analysis.stats.model import EquivalenceRow
from quantmatrix.decision.memory_model import MemoryRow

DEFAULT_MEMORY_TIERS_GB: tuple[float, ...] = (2, 4, 6, 8)
Bytes = int | float  # measured bytes are counted (int); an estimate is a product (float)
# the figures of a VariantRow that are looked up by name (plots, Pareto fronts, compare)
FigureName = Literal["accuracy", "decode_tps", "ttft_s", "usd_per_m", "memory_bytes"]


class Policy(Frozen):
    """What the decision is asked for: the memory budgets to fill, and the hourly rate to price
    with (None: the run's own ``cost_per_hour``)."""

    memory_tiers_gb: tuple[float, ...] = DEFAULT_MEMORY_TIERS_GB
    cost_per_hour: float | None = None

    @field_validator("memory_tiers_gb")
    @classmethod
    def _positive(cls, tiers: tuple[float, ...]) -> tuple[float, ...]:
        if not tiers or any(g <= 0 for g in tiers):
            raise ValueError("memory tiers must be a non-empty list of positive GB values")
        return tiers


class VariantRow(Frozen):
    """One flat row per variant: quality, tier, speed, $/1M and the memory the decision uses."""

    variant: str
    model: str
    level: str
    is_baseline: bool
    baseline_level: str | None
    n: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    baseline_accuracy: float | None
    delta_pp: float | None
    gen_delta_pct: float | None
    tier: str | None
    safe: bool
    decode_tps: float | None
    ttft_s: float | None
    usd_per_m: float | None
    savings_pct: float | None
    cheaper_x: float | None
    memory_bytes: Bytes | None
    memory_basis: str
    task_delta_pp: dict[str, float | None]
    # given when the timing phase ran: decode_tps, ttft_s and usd_per_m are then single-stream
    # ("single-stream"), and the evaluation's aggregate tok/s at its batch size is kept beside
    speed_basis: str | None = None
    batch_decode_tps: float | None = None
    batch_size: int | None = None

    @model_serializer(mode="wrap")
    def _only_when_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        for name in ("speed_basis", "batch_decode_tps", "batch_size"):
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data

    def figure(self, name: FigureName) -> float | None:
        """One of the row's figures by name (as it is stored: bytes stay int when counted)."""
        value: float | None = getattr(self, name)
        return value


class MatrixEntry(Frozen):
    """One memory budget: the variants that fit, and those recommended (fit and tier safe)."""

    label: str
    limit_gb: float
    open_ended: bool
    fits: tuple[str, ...]
    recommended: tuple[str, ...]


class NotRecommended(Frozen):
    variant: str
    tier: str | None
    reason: str


class Cliff(Frozen):
    """Walking down one model's ladder: the last safe level, the first unsafe one, the drop."""

    model: str
    last_safe: str | None
    first_unsafe: str | None
    first_unsafe_tier: str | None
    cliff_pp: float | None
    note: str


class Step(Frozen):
    """One step up a ladder (lower -> higher precision): quality gained vs cost and speed."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    model: str
    from_level: str = Field(alias="from")
    to: str
    gain_pp: float | None
    cost_change_pct: float | None
    speed_change_pct: float | None
    memory_change_pct: float | None
    gain_per_10pct_cost: float | None
    diminishing: bool | None


class TaskDifferential(Frozen):
    """A variant's delta on MMLU and on ARC (pp) and their difference."""

    variant: str
    mmlu_pp: float | None
    arc_challenge_pp: float | None
    diff_pp: float | None


class Decision(Frozen):
    """Everything the decision sections show; deterministic, no NaN."""

    study: str
    cost_per_hour: float
    context_length: int
    memory_tiers_gb: tuple[float, ...]
    variants: tuple[VariantRow, ...]
    matrix: tuple[MatrixEntry, ...]
    not_recommended: tuple[NotRecommended, ...]
    tier_counts: dict[str, int]
    cliffs: tuple[Cliff, ...]
    diminishing_returns: tuple[Step, ...]
    task_differential: tuple[TaskDifferential, ...]
    pareto_cost: tuple[str, ...]
    pareto_memory: tuple[str, ...]
    memory: tuple[MemoryRow, ...]
    summary: tuple[str, ...]

    def rows(self) -> dict[str, VariantRow]:
        return {r.variant: r for r in self.variants}


class CostFacts(Frozen):
    cost_per_hour: float
    usd_per_m: float | None
    savings_pct: float | None
    cheaper_x: float | None
    baseline_level: str | None


class Validation(Frozen):
    """What a run says about one variant (``quantmatrix validate``)."""

    variant: str
    tier: str
    delta_pp: float | None
    gen_delta_pct: float | None
    accuracy: float | None
    ci: tuple[float | None, float | None]
    equivalence: tuple[EquivalenceRow, ...]  # empty: not computed
    cost: CostFacts
    memory: MemoryRow
    summary: str
