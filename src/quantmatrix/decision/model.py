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
from quantmatrix.decide import SAFE_TIERS
from quantmatrix.decision.answer_model import ANSWER_BUDGETS_GB, BudgetAnswer
from quantmatrix.decision.memory_model import MemoryRow

DEFAULT_MEMORY_TIERS_GB: tuple[float, ...] = (2, 4, 6, 8)
Bytes = int | float  # measured bytes are counted (int); an estimate is a product (float)
# the figures of a VariantRow that are looked up by name (plots, Pareto fronts, compare)
FigureName = Literal["accuracy", "decode_tps", "ttft_s", "usd_per_m", "memory_bytes"]
# which tier the decision reads: certified (the worst the data allow; the default) or point
Basis = Literal["certified", "point"]
BASES: tuple[str, ...] = ("certified", "point")


class Policy(Frozen):
    """What the decision is asked for: the memory budgets to fill, and the hourly rate to price
    with (None: the run's own ``cost_per_hour``)."""

    memory_tiers_gb: tuple[float, ...] = DEFAULT_MEMORY_TIERS_GB
    cost_per_hour: float | None = None
    basis: Basis = "certified"
    # the answer's budgets (the largest that fits is added after them)
    answer_budgets_gb: tuple[float, ...] = ANSWER_BUDGETS_GB

    @field_validator("memory_tiers_gb", "answer_budgets_gb")
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
    # the certified tiers (analysis certified block; the baseline is its own reference:
    # negligible, decided, a zero-width change); None where the analysis has none
    certified_tier: str | None = None
    best_tier: str | None = None
    decided: bool | None = None
    certified_note: str = ""
    bench_change_pp: float | None = None  # the paired change on the paired items
    bench_low_pp: float | None = None  # the paired interval of the accuracy change
    bench_high_pp: float | None = None
    bench_certified_pp: float | None = None  # the fixed-sequence lower bound the tier is of
    bench_n: int | None = None  # paired items
    gen_low_pct: float | None = None  # the generation key average's certified lower bound
    gen_high_pct: float | None = None
    gen_n: int | None = None
    items_used: int | None = None
    items_fixed: int | None = None  # adaptive: what a fixed design would have used
    flips_lost: int | None = None  # paired items right at the baseline, wrong here
    flips_gained: int | None = None  # paired items wrong at the baseline, right here

    def tier_on(self, basis: Basis) -> str | None:
        """The tier the decision reads under ``basis``."""
        return self.tier if basis == "point" else self.certified_tier

    def safe_on(self, basis: Basis) -> bool:
        return self.tier_on(basis) in SAFE_TIERS

    def accuracy_range(self, basis: Basis) -> tuple[float, float] | None:
        """Accuracy the data allow: the baseline's plus the paired change interval, its lower
        end the fixed-sequence bound (certified), or the 95% Wilson interval (point)."""
        base, high = self.baseline_accuracy, self.bench_high_pp
        low = self.bench_certified_pp if self.bench_certified_pp is not None else self.bench_low_pp
        if basis == "certified" and base is not None and low is not None and high is not None:
            return base + low / 100.0, base + high / 100.0
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low, self.ci_high

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
    basis: Basis = "certified"
    answer: tuple[str, ...] = ()  # per memory budget: the recommended variant and its guarantee
    # the answer across models per answer budget (1, 2, 4 GB and the largest that fits)
    budgets: tuple[BudgetAnswer, ...] = ()

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
    certified: str = ""  # the guarantee line (decision/guarantee.py); "" without a certified tier
