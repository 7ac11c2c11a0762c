"""The typed statistics section of an analysis (``section.build_statistics`` assembles it).

Every float a library could leave undefined (NaN, infinity) is None here.
"""

from __future__ import annotations

from quantmatrix.analysis.frozen import Frozen


class Head(Frozen):
    model: str
    variant: str
    level: str


class WilsonRow(Head):
    n: int
    correct: int
    accuracy: float | None
    low: float | None
    high: float | None


class Welch(Frozen):
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    statistic: float | None
    df: float | None
    p_value: float
    cohen_d: float | None


class PairedTest(Frozen):
    test: str  # "mcnemar (exact)", "mcnemar (mid-p)" or "wilcoxon"
    p_value: float
    t_p_value: float | None


class Flips(Frozen):
    correct_to_wrong: int
    wrong_to_correct: int


class AdjacentTest(Frozen):
    """One step down a ladder (higher -> lower level) on one metric."""

    id: str
    model: str
    higher: str
    lower: str
    metric: str
    n_pairs: int
    diff: float
    welch: Welch
    cohen_d: float | None
    paired: PairedTest
    flips: Flips | None  # accuracy only


class CorrectedTest(Frozen):
    id: str
    p: float
    p_bonferroni: float
    p_holm: float
    survives_bonferroni: bool
    survives_holm: bool


class Family(Frozen):
    """Bonferroni and Holm over one family of adjacent tests."""

    n_tests: int
    bonferroni_alpha: float | None
    tests: tuple[CorrectedTest, ...]
    survivors_bonferroni: tuple[str, ...]
    survivors_holm: tuple[str, ...]


class EquivalenceRow(Head):
    """One TOST of a variant against its baseline: metric x margin x design."""

    metric: str
    margin_label: str
    design: str
    margin: float
    n: int
    delta: float
    p_lower: float
    p_upper: float
    p_value: float
    equivalent: bool


class LadderRow(Frozen):
    """Fixed-sequence walk down one model's ladder for one metric, margin and design."""

    model: str
    baseline: str
    metric: str
    margin_label: str
    design: str
    tested: tuple[str, ...]
    confirmed: tuple[str, ...]
    stopped_at: str | None
    lowest_confirmed: str | None


class PowerModel(Frozen):
    model: str
    baseline: str
    n: int
    baseline_accuracy: float | None
    mde_unpaired_worst_case: float | None
    mde_unpaired_model: float | None


class PowerMetric(Frozen):
    metric: str
    n: int
    mde_unpaired: float | None
    mde_paired: float | None


class PowerVariant(Head):
    n_pairs: int
    delta: float
    discordance: float
    mde_paired: float | None
    n_equivalence_3pp_paired: int | None
    n_equivalence_3pp_unpaired: int | None
    metrics: tuple[PowerMetric, ...]


class Power(Frozen):
    models: tuple[PowerModel, ...]
    variants: tuple[PowerVariant, ...]


class BootstrapRow(Head):
    n: int
    delta: float
    low: float | None
    high: float | None
    confidence: float
    n_resamples: int
    seed: int


class TimingSeries(Frozen):
    """Tukey fences and CV of one timing series; ``outliers`` index into the series."""

    n: int
    mean: float | None
    median: float | None
    q1: float | None
    q3: float | None
    low_fence: float | None
    high_fence: float | None
    outliers: tuple[int, ...]
    cv: float | None


class TimingRow(Head):
    ttft_s: TimingSeries
    decode_tps: TimingSeries


class TaskTest(Head):
    """One variant vs its baseline on one task's items (paired), Holm-adjusted in its family."""

    kind: str  # "benchmark" (accuracy, pp) or "generation" (key average, %)
    task: str
    n: int
    change: float | None  # pp (benchmark) or % (generation; None: baseline mean not positive)
    low: float | None  # paired 95% interval; None where undefined (fewer than 2 items)
    high: float | None
    interval: str  # "newcombe" or "delta"
    test: str  # "mcnemar (exact)" or "wilcoxon"
    p_value: float
    p_holm: float
    survives_holm: bool
    flips: Flips | None  # benchmark only


class TaskDifferential(Head):
    """Does the variant's accuracy change differ between two benchmarks (a - b, in pp)?"""

    task_a: str
    task_b: str
    n_a: int
    n_b: int
    change_a: float
    change_b: float
    diff: float
    low: float
    high: float
    z: float
    test: str
    p_value: float
    p_holm: float
    survives_holm: bool


class PerTask(Frozen):
    """Per-task paired tests and the benchmark differential; ``families`` says what Holm spans."""

    families: str
    tests: tuple[TaskTest, ...]
    differential: tuple[TaskDifferential, ...]


class StatsSummary(Frozen):
    variants_vs_baseline: int
    accuracy_equivalent: dict[str, dict[str, int]]  # design -> margin label -> variants


class Statistics(Frozen):
    """All statistics of a run; rows follow the ladders, metric names sorted."""

    alpha: float
    seed: int
    power_target: float
    wilson: tuple[WilsonRow, ...]
    adjacent: tuple[AdjacentTest, ...]
    corrections: dict[str, Family]  # "welch" and "paired"
    equivalence: tuple[EquivalenceRow, ...]
    ladder: tuple[LadderRow, ...]
    power: Power
    bootstrap: tuple[BootstrapRow, ...]
    timing: tuple[TimingRow, ...]
    per_task: PerTask
    summary: StatsSummary
