"""The typed per-variant summary of an analysis (built in ``tables.py`` and ``generation.py``)."""

from __future__ import annotations

from pydantic import SerializerFunctionWrapHandler, model_serializer

from quantmatrix.analysis.certified_model import CertifiedBlock
from quantmatrix.analysis.frozen import Copied, Frozen, JsonScalar

# seconds summed over log rows: the int 0 when there were none (kept as such in analysis.json)
SummedSeconds = float | int


class AccuracyBlock(Frozen):
    """Rescored accuracy with its 95% Wilson CI, raw exact match and the unparsed rate."""

    n: int
    correct: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    raw_exact: float | None
    unparsed: int
    unparsed_rate: float | None


class TaskAccuracy(AccuracyBlock):
    """One task's accuracy and its change vs the baseline's on that task (pp)."""

    delta_pp: float | None


class TimingBlock(Frozen):
    """Engine-native and wall speeds and token counts over some rows of a variant: its
    evaluation's samples (``VariantSummary.timing``) or its single-stream timing rows
    (``VariantSummary.single_stream``)."""

    native_decode_tps: float | None
    native_prompt_tps: float | None
    wall_tps: float | None
    ttft_mean_s: float | None
    ttft_median_s: float | None
    mean_generated_tokens: float | None
    mean_prompt_tokens: float | None
    wall_s: float
    native_s: float


class SessionOverhead(Frozen):
    """The evaluation loop's wall time over the engine's own time, over a variant's sessions."""

    eval_wall_s: SummedSeconds
    native_s: SummedSeconds
    harness_overhead: float | None


class FileInfo(Copied):
    """The GGUF file's facts as ``models.gguf_info.GGUFInfo`` logged them."""

    path: str | None = None
    size_bytes: int | None = None
    architecture: str | None = None
    name: str | None = None
    file_type: str | None = None
    n_params: int | None = None
    tensor_bytes: int | None = None
    tensor_types: dict[str, int] | None = None  # type name -> number of tensors
    bits_per_weight: float | None = None
    has_chat_template: bool | None = None


class GpuInfo(Copied):
    """NVML's last reading (``engine.gpu.GpuMemory``); a device is NVML's free-form facts."""

    source: str | None = None
    process_bytes: int | None = None
    device_used_bytes: int | None = None
    devices: tuple[dict[str, JsonScalar], ...] | None = None
    error: str | None = None


class MemoryInfo(Copied):
    """The backend's memory reading: the peak and what measured it, plus its own extras."""

    peak_bytes: int | None = None
    source: str | None = None
    rss_before_load: int | None = None  # llama.cpp
    offloaded: bool | None = None
    gpu: GpuInfo | None = None
    vram_bytes: int | None = None
    size_vram: int | None = None  # ollama
    tag: str | None = None


class ContextMemoryPoint(Frozen):
    """A variant's memory at one context length (``memory.jsonl``, the memory phase): the
    figure the decision uses and what it is (``basis``), llama.cpp's own buffers beside it,
    and the KV cache by the file header's formula."""

    n_ctx: int
    peak_bytes: int
    basis: str
    fill: str
    filled_tokens: int
    rss_before_bytes: int
    rss_peak_bytes: int
    model_bytes: int
    kv_bytes: int
    compute_bytes: int
    output_bytes: int
    kv_estimate_bytes: int | None
    vram_bytes: int | None
    flash_attn: bool


class MetricCI(Frozen):
    """A metric's mean with its 95% t-interval."""

    mean: float | None
    ci_low: float | None
    ci_high: float | None


class GenerationBlock(Frozen):
    """Generation metrics over some scored pairs: metric name -> mean and CI."""

    n: int
    metrics: dict[str, MetricCI]


class GenerationSummary(GenerationBlock):
    """A variant's generation quality vs the references, per task, and vs its baseline."""

    tasks: dict[str, GenerationBlock]
    fidelity: GenerationBlock | None
    key_avg_delta_pct: float | None
    repetition_collapse: bool


class VariantSummary(AccuracyBlock):
    """Everything measured about one variant, with its deltas, tier and divergence figures."""

    variant: str
    model: str
    level: str
    is_baseline: bool
    tasks: dict[str, TaskAccuracy]
    generation: GenerationSummary | None
    gen_delta_pct: float | None
    timing: TimingBlock
    overhead: SessionOverhead
    file: FileInfo | None
    memory: MemoryInfo | None
    reconstructed: bool | None
    source_type: str | None
    delta_pp: float | None
    tier: str | None
    kld_mean: float | None
    kld_p99: float | None
    top_agreement: float | None
    ppl_ratio: float | None
    letter_kl_mean: float | None
    letter_agreement: float | None
    # what the data certify about the change vs the baseline (certified.py): None for a
    # baseline or a variant without one; ``tier`` above stays the point tier, as published
    certified: CertifiedBlock | None = None
    # where the weights came from (models/origin.py's kinds), the source's label, and the
    # importance matrix the level was built with (text, path, sha256): dumped only when the
    # variants row said (logs written before these fields keep their analysis.json)
    origin: str | None = None
    source: str | None = None
    imatrix: dict[str, str] | None = None
    # requests the engine decoded together (backend info's batch_size): above 1, the
    # evaluation's speed figures (``timing``) are aggregate throughput of that many sequences
    batch_size: int | None = None
    # the timing phase's rows (pipeline/timing.py): one request at a time, as one user sees
    # it; when given, the decision's speed figures (``speed``) come from here
    single_stream: TimingBlock | None = None
    # the KV-cache type it ran with, when its model has a KV axis (``kv_cache`` in the study;
    # ``level`` is then the label, e.g. Q4_K_M+kv-q8_0)
    kv_cache: str | None = None
    # peak memory at each measured context length, ascending (the memory phase's rows)
    context_memory: tuple[ContextMemoryPoint, ...] | None = None

    @model_serializer(mode="wrap")
    def _only_when_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        for name in WHEN_GIVEN:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data

    @property
    def speed(self) -> TimingBlock:
        """The speed figures the decision uses: single-stream when the timing phase ran, else
        the evaluation's (aggregate at ``batch_size`` when that is above 1)."""
        return self.single_stream or self.timing

    @property
    def speed_basis(self) -> str:
        """What :attr:`speed` is, as the report labels it."""
        if self.single_stream is not None:
            return "single-stream"
        return batch_basis(self.batch_size)


def batch_basis(batch_size: int | None) -> str:
    """What the evaluation's speed figures are: a batch's aggregate, or one request at a time."""
    return f"at batch {batch_size}" if batch_size and batch_size > 1 else "one at a time"


WHEN_GIVEN = (
    "origin", "source", "imatrix", "batch_size", "single_stream", "kv_cache", "context_memory",
)  # fmt: skip
