"""What ``quantmatrix plan`` works from and hands back: frozen values, no behaviour.

Speeds come from a short calibration run on this machine (``calibrate.py``, cached) or from the
user (``speeds.py``); facts about the cache and the installed packages from ``facts.py``; the
plan itself from the pure :func:`quantmatrix.plan.estimate.make_plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SpeedBasis = Literal["measured", "given", "scaled"]


@dataclass(frozen=True)
class Speeds:
    """How fast one variant runs here: single-stream prompt evaluation and decoding (tok/s),
    the aggregate figures at ``batch`` sequences decoded together, the load time."""

    prompt_tps: float
    decode_tps: float
    batch: int = 1
    batch_prompt_tps: float | None = None
    batch_decode_tps: float | None = None
    load_s: float = 0.0
    chars_per_token: float | None = None  # the model's tokenizer on English text
    template_tokens: int = 0  # what the chat template adds to a prompt
    basis: SpeedBasis = "given"
    note: str = ""  # measured: the load average then; scaled: from which level

    def at_batch(self, batch: int) -> tuple[float, float]:
        """(prompt, decode) tok/s for requests decoded ``batch`` at a time."""
        if batch > 1 and self.batch == batch and self.batch_decode_tps:
            return self.batch_prompt_tps or self.prompt_tps, self.batch_decode_tps
        return self.prompt_tps, self.decode_tps


@dataclass(frozen=True)
class QuantSpeeds:
    """llama.cpp's quantizer here: seconds per billion weights for each target level (``F16``
    from a quantized file: the dequantization every ladder of a 4-bit source starts with)."""

    s_per_billion: dict[str, float]
    basis: SpeedBasis = "measured"
    note: str = ""


@dataclass(frozen=True)
class ScoringCost:
    """The generation-scoring phase: loading the scoring models, then each scored pair."""

    load_s: float
    pair_s: float
    basis: SpeedBasis = "given"


@dataclass(frozen=True)
class LevelFacts:
    level: str
    present: bool  # the file is in the cache (or is the source file itself)
    size_bytes: int | None  # the file's, or an estimate from the nominal bits per weight
    is_source: bool = False  # the source file itself: downloaded or assembled, never quantized


@dataclass(frozen=True)
class ModelFacts:
    """What the machine already holds for one model of the study."""

    name: str
    backend: str
    source_kind: str  # packaged | gguf | hf-gguf | hf-safetensors | safetensors | server | fake
    source_type: str | None  # the source file's GGUF type (Q4_K_M, F16, ...), when known
    n_params: int | None
    source_size: int | None = None  # bytes of the source file (known once it is here)
    downloads: tuple[str, ...] = ()  # what must be fetched first, one line each
    prepare: tuple[str, ...] = ()  # steps before the ladder (assemble, convert), one line each
    prepare_s: float | None = 0.0  # their estimated time (None: unknown)
    float_parent_present: bool = True  # the file lower levels are built from (source or F16)
    imatrix_present: bool = True
    levels: tuple[LevelFacts, ...] = ()

    def level(self, name: str) -> LevelFacts | None:
        return next((lv for lv in self.levels if lv.level == name), None)


@dataclass(frozen=True)
class Inputs:
    """Everything ``make_plan`` reads besides the study and its samples."""

    facts: dict[str, ModelFacts]  # by model name
    speeds: dict[str, Speeds]  # by variant id (model@LEVEL); absent: unknown
    quantize: QuantSpeeds | None = None
    scoring: ScoringCost | None = None
    threads: int = 1


@dataclass(frozen=True)
class Range:
    """Seconds (or counts) from the best case to the worst; ``None``: not known."""

    low: float | None
    high: float | None

    @staticmethod
    def fixed(value: float | None) -> Range:
        return Range(value, value)

    def __add__(self, other: Range) -> Range:
        def add(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else a + b

        return Range(add(self.low, other.low), add(self.high, other.high))


ZERO = Range(0.0, 0.0)


@dataclass(frozen=True)
class VariantPlan:
    variant: str
    model: str
    level: str
    baseline: bool
    mc: tuple[int, int]  # multiple-choice items asked: (fewest, most); equal when fixed
    generation: int
    timing: int  # single-stream timing requests
    file: str  # what holds its weights, and whether it is there
    speeds: Speeds | None
    eval_s: Range


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: Range
    note: str = ""


@dataclass(frozen=True)
class Plan:
    study: str
    design: str  # one line: items per task, sampling, batching
    resolution: tuple[str, ...]
    variants: tuple[VariantPlan, ...]
    samples: tuple[str, ...]  # totals, one line each
    downloads: tuple[str, ...]
    builds: tuple[str, ...]
    phases: tuple[Phase, ...]
    assumptions: tuple[str, ...] = field(default=())

    @property
    def total(self) -> Range:
        out = ZERO
        for phase in self.phases:
            out = out + phase.seconds
        return out
