"""The analysis of a run as one typed, frozen value, and the one reader of ``analysis.json``.

``analysis.json`` is :meth:`Analysis.json_dict` with the report's decision added under
``"decision"``; :func:`read_analysis` loads it back (the decision is dropped: it is recomputed
from the analysis) and refuses an ``analysis_version`` it does not know, in one line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import SerializerFunctionWrapHandler, ValidationError, model_serializer

from quantmatrix.analysis.cross_model_model import CrossModelPair
from quantmatrix.analysis.determinism import Determinism
from quantmatrix.analysis.divergence_model import Divergence, DivergenceCliff
from quantmatrix.analysis.frozen import Frozen
from quantmatrix.analysis.probes_model import Probes
from quantmatrix.analysis.stats.model import Statistics
from quantmatrix.analysis.variant_model import SummedSeconds, VariantSummary
from quantmatrix.config import Decoding

ANALYSIS_VERSION = 2  # 2: generation tiers under their own bounds, the certified blocks


class AnalysisFileError(ValueError):
    """An ``analysis.json`` that cannot be read back; the message is one line."""


class Sizes(Frozen):
    """How finely the run can resolve accuracy: items per variant and what one item moves."""

    items_per_variant: int
    per_task: dict[str, int]
    one_item_pp: float | None
    wilson_half_width_at_50pct: float | None
    unpaired_mde_at_50pct: float | None


class HarnessOverhead(Frozen):
    """Wall time of the evaluation loop over the engine's own time, over the whole run."""

    eval_wall_s: SummedSeconds
    native_s: SummedSeconds
    ratio: float | None


class ScoringModels(Frozen):
    """The models that scored the generation outputs (``scoring.phase``)."""

    embedding_model: str
    bertscore_model: str
    bertscore_layer: int
    bertscore_backend: str


class Analysis(Frozen):
    """Summaries, statistics and divergence of every variant of a run: a function of its log."""

    analysis_version: int
    study: str
    config_hash: str
    decoding: Decoding
    cost_per_hour: float | None
    context_length: int | None
    sizes: Sizes
    variants: tuple[VariantSummary, ...]
    harness_overhead: HarnessOverhead
    statistics: Statistics
    scoring_models: ScoringModels | None
    divergence: Divergence
    divergence_cliffs: dict[str, DivergenceCliff]  # model -> its cliffs
    log_warnings: tuple[str, ...]  # rows the reading ignored (runlog_check.read_warnings)
    # every pair of variants of two models, paired on shared items (analysis/cross_model.py);
    # dumped only when there is one, so one-model analyses keep their shape
    cross_model: tuple[CrossModelPair, ...] = ()
    # the determinism check (analysis/determinism.py); None, and absent from analysis.json,
    # for a run without it, so such runs' files stay as they were
    determinism: Determinism | None = None
    # context-length and batch sensitivity (analysis/probes.py): dumped only when the run has
    # them, so logs without them keep their analysis.json
    probes: Probes | None = None

    @model_serializer(mode="wrap")
    def _optional_parts(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if not self.cross_model:
            data.pop("cross_model", None)
        if self.determinism is None:
            data.pop("determinism", None)
        if self.probes is None:
            data.pop("probes", None)
        return data

    def accuracy_deltas(self) -> dict[str, float]:
        return accuracy_deltas(self.variants)

    def summary(self, variant: str) -> VariantSummary | None:
        return next((s for s in self.variants if s.variant == variant), None)

    def baseline_of(self, model: str) -> VariantSummary | None:
        return next((s for s in self.variants if s.model == model and s.is_baseline), None)


def accuracy_deltas(summaries: Sequence[VariantSummary]) -> dict[str, float]:
    """variant -> accuracy change vs its baseline as a proportion (variants with a delta)."""
    return {s.variant: s.delta_pp / 100.0 for s in summaries if s.delta_pp is not None}


def read_analysis(path: Path) -> Analysis:
    """``analysis.json`` back into an :class:`Analysis`; one-line :class:`AnalysisFileError` for a
    missing or malformed file, an unknown ``analysis_version`` or a field that does not fit."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnalysisFileError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise AnalysisFileError(f"{path} is not an analysis (a JSON object is expected)")
    version = data.get("analysis_version")
    if version != ANALYSIS_VERSION:
        raise AnalysisFileError(
            f"{path} has analysis_version {version!r}; this quantmatrix reads version "
            f"{ANALYSIS_VERSION}: rerun `quantmatrix report` on its run folder"
        )
    data.pop("decision", None)
    try:
        return Analysis.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AnalysisFileError(f"{path}: {where}: {first['msg']}") from None
