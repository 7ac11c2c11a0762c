"""The run log's rows, defined once: one frozen pydantic model per file, each naming its schema.

A writer builds the typed row and ``AppendLog.append`` writes :meth:`LogRow.as_written` (sealed
with its SHA-256 over that canonical JSON); a reader gets typed rows back from
``check.load_rows``, after ``migrate.py`` has brought older versions up to the current one.

==================  ================  ===============================  =========================
file                row               key (one row per key)            schema (current, reads)
==================  ================  ===============================  =========================
samples.jsonl       SampleRow         (variant, task, item)            2 (1: migrated on read)
variants.jsonl      VariantRow        (variant, session)               2 (1: migrated on read)
scores.jsonl        ScoreRow          (variant, task, item, against)   1
kld.jsonl           KldRow            (variant, corpus_sha256, chunk)  1
timing.jsonl        TimingRow         (variant, task, item)            2 (1: migrated on read)
determinism.jsonl   DeterminismRow    (variant, task, item)            1
memory.jsonl        ContextMemoryRow  (variant, n_ctx)                 1
long_context.jsonl  LongContextRow    (variant, corpus_sha256,         1
                                      document, bucket)
==================  ================  ===============================  =========================

Every row's ``level`` is the variant's label: its quant level, marked ``+kv-TYPE`` when it ran
with a KV-cache type other than f16 (``kvcache.variant_label``; the id is ``model@label``).

Sample rows of version 2 name their ``task_kind`` (version 1 left it to be guessed from the
inputs' keys) and no longer carry the write-time multiple-choice ``scores``, which no reader
used: the analysis rescores every reply from ``output``, ``input`` and ``letters``. Variant
rows of version 2 say where the weights came from (``origin``, ``source``, ``imatrix``:
``models.ladder.Variant.log_fields``); version 1 rows read as origin unknown. Timing rows
(``pipeline/timing.py``) are one request of the single-stream subset, asked alone; version 2
keeps the option-letter probabilities of a multiple-choice reply (``letters``), which the batch
sensitivity compares with the batched evaluation's (version 1 rows: none). Determinism rows
(``pipeline/determinism.py``) are one answered item asked again on a fresh backend, compared
bit for bit with its sample row. Long-context rows (``pipeline/long_context.py``) are one
document's token KL in one bucket of positions.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantmatrix.runlog.files import (
    DETERMINISM,
    KLD,
    LONG_CONTEXT,
    MEMORY,
    SAMPLES,
    SCORES,
    TIMING,
    VARIANTS,
)
from quantmatrix.tasks.base import TaskKind

Key = tuple[Any, ...]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LogRow(_Frozen):
    """What every row has: its file, its key fields, the config hash its run wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    FILE: ClassVar[str]
    KEY: ClassVar[tuple[str, ...]]
    SCHEMA: ClassVar[int]

    variant: str
    # the study's config hash, set by AppendLog when the row is written (older rows have none)
    config: str | None = None

    @property
    def key(self) -> Key:
        """The fields that make a row unique in its file (``check.py`` enforces it)."""
        return tuple(getattr(self, name) for name in self.KEY)

    def as_written(self) -> dict[str, Any]:
        """The row's JSON body, as ``AppendLog`` seals it (``config`` is the log's to add)."""
        return self.model_dump(mode="json", by_alias=True, exclude={"config"})


class LetterStats(_Frozen):
    """The option letters' probabilities at the reply's first step (``letter_stats``)."""

    letters: str
    probs: tuple[float, ...]
    letter_mass: float
    dist: tuple[float, ...]
    pred: str
    gold: str
    p_gold: float
    correct: bool
    entropy: float


class SampleTiming(_Frozen):
    prompt_tokens: int
    generated_tokens: int
    prompt_eval_s: float | None
    decode_s: float | None
    decode_tokens: int | None
    ttft_s: float | None
    wall_s: float


class SampleRow(LogRow):
    """One answer of one variant to one item (``samples.jsonl``)."""

    FILE: ClassVar[str] = SAMPLES
    KEY: ClassVar[tuple[str, ...]] = ("variant", "task", "item")
    SCHEMA: ClassVar[int] = 2

    kind: Literal["sample"] = "sample"
    schema_version: Literal[2] = Field(default=2, alias="schema")
    model: str
    level: str
    task: str
    item: str
    task_kind: TaskKind
    input: dict[str, Any]  # the task's inputs (gold, choices / reference, ...), prompt, budget
    output: str
    finish_reason: str
    letters: LetterStats | None
    timing: SampleTiming
    error: str | None

    @property
    def item_key(self) -> str:
        return f"{self.task}|{self.item}"


class VariantRow(LogRow):
    """One variant in one session of ``quantmatrix run`` (``variants.jsonl``)."""

    FILE: ClassVar[str] = VARIANTS
    KEY: ClassVar[tuple[str, ...]] = ("variant", "session")
    SCHEMA: ClassVar[int] = 2

    kind: Literal["variant"] = "variant"
    schema_version: Literal[2] = Field(default=2, alias="schema")
    model: str
    level: str
    file: dict[str, Any] | None  # GGUFInfo.as_dict(); None without a local file
    source_sha256: str | None
    source_type: str | None
    reconstructed: bool
    # where the weights came from (models/origin.py's kinds), the source's label, and the
    # importance matrix a level was built with; None in rows migrated from version 1
    origin: str | None
    source: str | None
    imatrix: dict[str, Any] | None
    backend: dict[str, Any]  # Backend.info()
    memory: dict[str, Any] | None  # peak_bytes, source and the reading's extras
    warmup_runs: int
    warmup_s: float
    session_samples: int
    session_eval_wall_s: float
    session_native_s: float
    session: str | None = None  # rows written before sessions were recorded have none


class ScoringModels(_Frozen):
    embedding_model: str
    bertscore_model: str
    bertscore_layer: int
    bertscore_backend: str


class ScoreRow(LogRow):
    """One generation output scored against the reference or the baseline's output."""

    FILE: ClassVar[str] = SCORES
    KEY: ClassVar[tuple[str, ...]] = ("variant", "task", "item", "against")
    SCHEMA: ClassVar[int] = 1

    kind: Literal["score"] = "score"
    schema_version: Literal[1] = Field(default=1, alias="schema")
    task: str
    item: str
    against: Literal["reference", "baseline"]
    metrics: dict[str, float]
    models: ScoringModels


class KldRow(LogRow):
    """Token-level KL of one variant vs its model's baseline on one corpus chunk."""

    FILE: ClassVar[str] = KLD
    KEY: ClassVar[tuple[str, ...]] = ("variant", "corpus_sha256", "chunk")
    SCHEMA: ClassVar[int] = 1

    kind: Literal["kld"] = "kld"
    schema_version: Literal[1] = Field(default=1, alias="schema")
    model: str
    level: str
    baseline: str
    corpus_sha256: str
    corpus_source: str
    chunk: int
    n_tokens: int
    kl_method: str
    kl: tuple[float, ...]
    kl_topk: tuple[float, ...]
    same_top: int
    n_targets: int
    nll_sum: float
    base_nll_sum: float


class TimingRow(LogRow):
    """One item of the timing subset asked alone: batch size 1, one request in flight, after a
    warm-up, in the phase's round order (``pipeline/timing.py``), so its speeds are what one
    user sending one request sees. ``timing.ttft_s`` is the time to the first token as the
    caller saw it: in process for the embedded engine (prompt eval + first token), client-side
    from the stream for a server."""

    FILE: ClassVar[str] = TIMING
    KEY: ClassVar[tuple[str, ...]] = ("variant", "task", "item")
    SCHEMA: ClassVar[int] = 2

    kind: Literal["timing"] = "timing"
    schema_version: Literal[2] = Field(default=2, alias="schema")
    model: str
    level: str
    task: str
    item: str
    task_kind: TaskKind
    round: int  # the round it ran in: round r visits every level before round r + 1
    output: str
    finish_reason: str
    letters: LetterStats | None  # a multiple-choice reply's first step (None in version 1)
    timing: SampleTiming
    error: str | None
    session: str | None


class DeterminismRow(LogRow):
    """One answered item asked again on a fresh backend (a new llama.cpp context, at
    ``rerun_threads`` threads; a new client for a server), in its batch group as the evaluation
    asked it, and compared bit for bit with its sample row: the output text, and the option
    letters' probabilities where both answers have them (``pipeline/determinism.py``)."""

    FILE: ClassVar[str] = DETERMINISM
    KEY: ClassVar[tuple[str, ...]] = ("variant", "task", "item")
    SCHEMA: ClassVar[int] = 1

    kind: Literal["determinism"] = "determinism"
    schema_version: Literal[1] = Field(default=1, alias="schema")
    model: str
    level: str
    task: str
    item: str
    task_kind: TaskKind
    backend: str  # the backend's registry name
    threads: int | None  # the evaluation's thread count (embedded engine), else None
    rerun_threads: int | None  # the re-run's
    group_size: int  # requests of its batch group asked together again (1: alone)
    same_output: bool  # the re-run's text equals the sample row's, byte for byte
    same_letters: bool | None  # every letter probability equal; None: a side has none
    letters_max_abs_diff: float | None
    output: str  # the re-run's text
    letter_probs: tuple[float, ...] | None  # the re-run's
    error: str | None  # the re-run's error, if any (then nothing is the same)
    session: str | None


class ContextMemoryRow(LogRow):
    """One variant's peak memory at one context length, measured in a fresh child process
    (``pipeline/memory.py``, ``backends/context_memory.py``): ``peak_bytes`` is the figure the
    decision uses and ``basis`` says what it is; llama.cpp's own buffer sizes beside it, and
    ``kv_estimate_bytes`` the KV cache by the file header's formula (``gguf_info``)."""

    FILE: ClassVar[str] = MEMORY
    KEY: ClassVar[tuple[str, ...]] = ("variant", "n_ctx")
    SCHEMA: ClassVar[int] = 1

    kind: Literal["memory"] = "memory"
    schema_version: Literal[1] = Field(default=1, alias="schema")
    model: str
    level: str
    kv_cache: str
    n_ctx: int
    flash_attn: bool
    fill: str  # "full": n_ctx - 1 tokens decoded; "batch": one batch of 512
    filled_tokens: int
    peak_bytes: int
    basis: str
    rss_before_bytes: int
    rss_peak_bytes: int
    model_bytes: int
    kv_bytes: int
    compute_bytes: int
    output_bytes: int
    vram_bytes: int | None
    offloaded: bool
    kv_estimate_bytes: int | None
    fill_s: float
    session: str | None


class LongContextRow(LogRow):
    """Token KL of one variant vs its baseline on one long document, over one bucket of
    positions ``[start, end)`` of a single sequence evaluated from the document's first token
    (``pipeline/long_context.py``): position ``p`` is the distribution of token ``p + 1``
    after ``p + 1`` tokens of context. ``n_tokens`` positions (fewer than ``end - start``
    when the document ends inside the bucket); ``kl_block_means``: the KL mean of each
    ``block_tokens`` positions, in order, for the profile plot. The control for the text: the
    bucket's first ``restart_tokens`` positions evaluated again from an empty cache (the same
    text without what precedes it; 0 for the first bucket), their KL sum that way
    (``restart_kl_sum``) and in the sequence (``restart_full_kl_sum``). ``eval_s``: the engine
    and comparison time spent on these positions (the first bucket's also holds the
    controls')."""

    FILE: ClassVar[str] = LONG_CONTEXT
    KEY: ClassVar[tuple[str, ...]] = ("variant", "corpus_sha256", "document", "bucket")
    SCHEMA: ClassVar[int] = 1

    kind: Literal["long_context"] = "long_context"
    schema_version: Literal[1] = Field(default=1, alias="schema")
    model: str
    level: str
    baseline: str
    corpus_sha256: str
    corpus_source: str
    document: int  # its place in the probe's documents
    document_id: str
    document_tokens: int  # the sequence evaluated (the document, capped)
    bucket: int
    start: int
    end: int
    n_tokens: int
    kl_method: str
    kl_sum: float
    kl_topk_sum: float
    kl_max: float
    same_top: int
    n_targets: int
    nll_sum: float
    base_nll_sum: float
    block_tokens: int
    kl_block_means: tuple[float, ...]
    restart_tokens: int
    restart_kl_sum: float
    restart_full_kl_sum: float
    eval_s: float


ROW_TYPES: dict[str, type[LogRow]] = {
    t.FILE: t
    for t in (
        SampleRow,
        VariantRow,
        ScoreRow,
        KldRow,
        TimingRow,
        DeterminismRow,
        ContextMemoryRow,
        LongContextRow,
    )
}
