"""The plan: a pure function of the study, its samples, and what is known on this machine.

Time model, phase by phase (the pipeline's own order, ``pipeline/run.py``):

- ladder: assembling or converting sources, then each missing level (``builds.py``); downloads
  are listed, not timed (the network's speed is not known here);
- evaluation: per variant, its multiple-choice items (adaptive: from the first look to
  ``max_items``) and generation prompts at the batch's aggregate speeds, plus one load and
  warm-up per round it takes part in;
- timing: the single-stream subset at single-stream speeds, one load per visit;
- KL: the corpus once per variant and once more for the baseline's stored rows;
- scoring: loading the scoring models, then each (output, reference / baseline) pair.

A request costs prompt tokens / prompt tok/s + new tokens / decode tok/s. Prompt tokens are
the prompt's characters over the model's measured characters per token plus its chat
template's tokens; new tokens are :data:`MC_REPLY_TOKENS` for a multiple-choice reply and
:data:`GEN_FILL` of the budget for a generation (means measured on the demo models).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from quantmatrix.backends.batching import batch_size_for
from quantmatrix.config import ModelSpec, Study
from quantmatrix.plan.builds import build_lines, download_lines, ladder_s
from quantmatrix.plan.model import (
    ZERO,
    Inputs,
    ModelFacts,
    Phase,
    Plan,
    Range,
    ScoringCost,
    Speeds,
    VariantPlan,
)
from quantmatrix.plan.resolution import design_line, mc_range, resolution_lines
from quantmatrix.tasks.base import Sample

# mean new tokens of a multiple-choice reply (it stops at the line's end): 4.1-4.5 on
# Qwen2.5-Coder-0.5B (178 replies), 9.5 on the 1.5B (8 replies; two ran to the 32-token cap)
MC_REPLY_TOKENS = 6.0
# share of a generation's token budget it uses: 41% on the 0.5B (15 replies, 64 tokens), 24% on
# the 1.5B (4 replies, 128 tokens); taken higher, as a batch runs until its longest reply ends
GEN_FILL = 0.5
CHARS_PER_TOKEN = 4.0  # when the model's own figure is not known
WARMUP_TOKENS = (20, 8)  # a warm-up request: prompt tokens, new tokens
KL_S_PER_TOKEN = 0.004  # the KL phase's own work per corpus token (logit rows, KL, storage)
SCORING = ScoringCost(load_s=20.0, pair_s=0.15, basis="measured")


@dataclass(frozen=True)
class _Work:
    """Mean request shapes of the study: prompt characters and new tokens."""

    mc: tuple[int, float]  # (count, mean prompt characters)
    gen: tuple[int, float, float]  # (count, mean prompt characters, mean new tokens)
    corpus_chars: int  # the multiple-choice items' text (the default KL corpus)


def _work(samples: Sequence[Sample]) -> _Work:
    mc = [s for s in samples if s.kind == "multiple_choice"]
    gen = [s for s in samples if s.kind == "generation"]

    def mean(values: Sequence[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    gen_new = GEN_FILL * mean([s.max_tokens for s in gen])
    return _Work(
        (len(mc), mean([len(s.prompt) for s in mc])),
        (len(gen), mean([len(s.prompt) for s in gen]), gen_new),
        sum(len(s.prompt) for s in mc),
    )


def _tokens(chars: float, sp: Speeds) -> float:
    return chars / (sp.chars_per_token or CHARS_PER_TOKEN) + sp.template_tokens


def _request_s(chars: float, new: float, sp: Speeds, batch: int) -> float:
    pp, tg = sp.at_batch(batch)
    return _tokens(chars, sp) / pp + new / tg


def _load_s(sp: Speeds, warmups: int) -> float:
    prompt, new = WARMUP_TOKENS
    return sp.load_s + warmups * (prompt / sp.prompt_tps + new / sp.decode_tps)


def _loads(study: Study, n_mc: int) -> tuple[int, int]:
    """Loads of one variant in the evaluation: one per round it takes part in."""
    if study.sampling.mode == "fixed" or n_mc == 0:
        return 1, 1
    return 1, len(study.sampling.looks(n_mc))


def _eval_s(study: Study, spec: ModelSpec, sp: Speeds | None, work: _Work) -> Range:
    if sp is None:
        return Range(None, None)
    batch = batch_size_for(spec, study)
    n_mc, mc_chars = work.mc
    n_gen, gen_chars, gen_new = work.gen
    lo, hi = mc_range(study, n_mc)
    loads = _loads(study, n_mc)
    t_mc = _request_s(mc_chars, MC_REPLY_TOKENS, sp, batch)
    fixed = n_gen * _request_s(gen_chars, gen_new, sp, batch)
    load = _load_s(sp, study.warmup_runs)
    return Range(lo * t_mc + fixed + loads[0] * load, hi * t_mc + fixed + loads[1] * load)


def _file_line(facts: ModelFacts, spec: ModelSpec, level: str) -> str:
    if facts.source_kind == "server":
        return f"{spec.backend} server"
    if facts.source_kind == "fake":
        return "scripted (fake)"
    lv = facts.level(level)
    size = f"{lv.size_bytes / 1e9:.2f} GB" if lv and lv.size_bytes else "size unknown"
    if lv and lv.present:
        return f"on disk, {size}"
    if lv and lv.is_source:
        return f"the source, {size}"
    return f"to build, ~{size}"


def _variant(study: Study, spec: ModelSpec, level: str, work: _Work, inputs: Inputs) -> VariantPlan:
    speeds = inputs.speeds.get(f"{spec.name}@{level}")
    return VariantPlan(
        variant=f"{spec.name}@{level}", model=spec.name, level=level,
        baseline=level == spec.baseline_level, mc=mc_range(study, work.mc[0]),
        generation=work.gen[0], timing=_timing_count(study, work),
        file=_file_line(inputs.facts[spec.name], spec, level), speeds=speeds,
        eval_s=_eval_s(study, spec, speeds, work),
    )  # fmt: skip


def make_plan(study: Study, samples: Sequence[Sample], inputs: Inputs) -> Plan:
    """Everything ``quantmatrix plan`` prints, from the study and the facts (pure)."""
    work = _work(samples)
    variants = tuple(
        _variant(study, spec, level, work, inputs)
        for spec in study.models
        for level in spec.ordered_levels
    )
    phases = (
        Phase("ladder", ladder_s(study, inputs), "downloads not timed"),
        Phase("evaluation", _sum(v.eval_s for v in variants), _eval_note(study)),
        Phase("timing", _timing_s(study, work, inputs), "single-stream subset"),
        Phase("KL", _kl_s(study, work, inputs), _kl_note(study)),
        Phase("scoring", _scoring_s(work, variants, inputs.scoring), "generation metrics"),
    )
    return Plan(
        study=study.name, design=design_line(study, samples),
        resolution=resolution_lines(study, samples), variants=variants,
        samples=_sample_lines(study, work, variants), downloads=download_lines(inputs),
        builds=build_lines(study, inputs), phases=phases, assumptions=_assumptions(inputs),
    )  # fmt: skip


def _sum(ranges: Iterable[Range]) -> Range:
    out = ZERO
    for r in ranges:
        out = out + r
    return out


def _kl_note(study: Study) -> str:
    if not study.divergence.kld:
        return "off"
    if not any(m.backend == "llamacpp" for m in study.models):
        return "none: no local model files"
    return f"{study.divergence.corpus_tokens} tokens per variant"


def _eval_note(study: Study) -> str:
    if study.sampling.mode == "adaptive":
        return "adaptive: all stop at their first look .. none stops early"
    return "fixed sampling"


def _timing_count(study: Study, work: _Work) -> int:
    if not study.timing.enabled:
        return 0
    return min(study.timing.multiple_choice, work.mc[0]) + min(study.timing.generation, work.gen[0])


def _timing_s(study: Study, work: _Work, inputs: Inputs) -> Range:
    """Single-stream requests of the subset, one load per visit (a model's levels take each
    round in turn; the level ending a round begins the next on the same backend)."""
    n = _timing_count(study, work)
    if n == 0:
        return ZERO
    n_mc = min(study.timing.multiple_choice, work.mc[0])
    n_gen = n - n_mc
    rounds = math.ceil(n / study.timing.round_items)
    total = 0.0
    for spec in study.models:
        speeds = [inputs.speeds.get(f"{spec.name}@{lv}") for lv in spec.ordered_levels]
        if any(sp is None for sp in speeds):
            return Range(None, None)
        known = [sp for sp in speeds if sp is not None]
        for sp in known:
            total += n_mc * _request_s(work.mc[1], MC_REPLY_TOKENS, sp, 1)
            total += n_gen * _request_s(work.gen[1], work.gen[2], sp, 1)
        visits = rounds * len(known) - (rounds - 1)
        total += visits * sum(_load_s(sp, study.timing.warmup_runs) for sp in known) / len(known)
    return Range.fixed(total)


def _kl_s(study: Study, work: _Work, inputs: Inputs) -> Range:
    if not study.divergence.kld:
        return ZERO
    total = 0.0
    for spec in study.models:
        if spec.backend != "llamacpp":
            continue
        for level in spec.ordered_levels:
            sp = inputs.speeds.get(f"{spec.name}@{level}")
            if sp is None:
                return Range(None, None)
            corpus = work.corpus_chars / (sp.chars_per_token or CHARS_PER_TOKEN)
            tokens = min(study.divergence.corpus_tokens, corpus)
            passes = 2 if level == spec.baseline_level else 1
            total += sp.load_s * passes + passes * tokens * (1 / sp.prompt_tps + KL_S_PER_TOKEN)
    return Range.fixed(total)


def _scoring_s(work: _Work, variants: Sequence[VariantPlan], cost: ScoringCost | None) -> Range:
    n_gen = work.gen[0]
    if n_gen == 0:
        return ZERO
    cost = cost or SCORING
    pairs = n_gen * (2 * len(variants) - sum(v.baseline for v in variants))
    return Range.fixed(cost.load_s + pairs * cost.pair_s)


def _sample_lines(study: Study, work: _Work, variants: Sequence[VariantPlan]) -> tuple[str, ...]:
    lo = sum(v.mc[0] for v in variants)
    hi = sum(v.mc[1] for v in variants)
    mc = f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}"
    gen = sum(v.generation for v in variants)
    timing = sum(v.timing for v in variants)
    local = sum(1 for s in study.models if s.backend == "llamacpp" for _ in s.levels)
    kl = f"{study.divergence.corpus_tokens} corpus tokens x {local} local variants"
    return (
        f"multiple choice: {mc} samples in all ({len(variants)} variants)",
        f"generation: {gen:,} samples; timing (single-stream): {timing:,} requests",
        f"KL: {kl}" if study.divergence.kld and local else "KL: none",
    )


def _assumptions(inputs: Inputs) -> tuple[str, ...]:
    bases = sorted({f"{sp.basis}" + (f" ({sp.note})" if sp.note else "")
                    for sp in inputs.speeds.values()})  # fmt: skip
    out = [
        f"multiple-choice replies ~{MC_REPLY_TOKENS:.0f} new tokens, generations "
        f"{GEN_FILL:.0%} of their budget (means on the demo models)",
        f"speeds: {'; '.join(bases) if bases else 'none known'}",
    ]
    if not inputs.speeds:
        out.append("no speeds: calibrate (plan without --no-calibrate) or give --speeds FILE")
    if inputs.quantize is not None and inputs.quantize.s_per_billion:
        out.append(f"quantizer: {inputs.quantize.basis}" +
                   (f" ({inputs.quantize.note})" if inputs.quantize.note else ""))  # fmt: skip
    return tuple(out)
