"""The divergence phase (token KL vs the baseline -> :class:`KldRow`), run after evaluation:
how far each variant's next-token distributions move from its model's baseline, beyond what
accuracy shows.

(Option-letter probabilities need no phase of their own: the backend returns them with each
multiple-choice answer, from the same forward pass, into ``samples.jsonl``.)

Token-level KL on a text corpus (default: the benchmark items' own questions and options, or a
local text file), cut into chunks that each start from an empty KV cache. The baseline's rows
are computed once and stored compactly in ``baseline_logits/<model>.npz`` (top-k log-probs +
remainder mass + sampled tail tokens, about 0.5 MB per 1,000 tokens; float16 full rows on
request, 2 bytes x vocabulary per token); every variant (the baseline too, as a self-check:
exactly 0) is compared chunk by chunk -> ``kld.jsonl``, append-only and resumable: a (variant,
corpus, chunk) row already present is never computed again (``resume.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from quantmatrix.config import Study
from quantmatrix.data.benchmarks import MCItem
from quantmatrix.engine.load import open_for_eval
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.resume import logged_keys, pending
from quantmatrix.progress import SILENT, Reporter
from quantmatrix.runlog import KLD, AppendLog, KldRow, read_manifest
from quantmatrix.runlog.rows import Key
from quantmatrix.runlog.writes import make_dirs, write_atomic
from quantmatrix.scoring import divergence as dv
from quantmatrix.scoring import logits as lg
from quantmatrix.tasks.plan import mc_items

BASELINE_DIR = "baseline_logits"
STORE_VERSION = 1


@dataclass(frozen=True)
class DivergenceOptions:
    threads: int | None = None
    corpus_tokens: int = 2048  # cap on corpus tokens per model
    chunk_tokens: int = 256  # each chunk is evaluated from an empty KV cache
    top_k: int = 32
    tail_samples: int = 32  # sampled tail tokens per row (0: the top-k lower bound only)
    keep_f16: bool = False  # also store float16 full rows; the KL then comes from them
    corpus_path: Path | None = None  # a local UTF-8 text file instead of the items' text
    kld: bool = True
    gpu_layers: Mapping[str, int | None] = field(default_factory=dict)  # model -> layers


@dataclass
class DivergenceOutcome:
    kld_rows: int = 0
    skipped_variants: list[str] = field(default_factory=list)  # no local file (fake, servers)


@contextmanager
def _load(v: Variant, options: DivergenceOptions, logits_all: bool, n_ctx: int) -> Iterator[Any]:
    from quantmatrix.engine.settings import machine_settings

    assert v.path is not None
    engine = replace(machine_settings(options.gpu_layers.get(v.model)), kv_cache=v.kv_cache)
    llm = open_for_eval(v.path, n_ctx, options.threads, logits_all, engine=engine)
    try:
        yield llm
    finally:
        llm.close()


def baseline_path(run_dir: Path, model: str) -> Path:
    return run_dir / BASELINE_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}.npz"


_TOPK_FIELDS = ("ids", "logprobs", "rest_logmass", "tail_ids", "tail_logprobs")


@dataclass(frozen=True)
class BaselineStore:
    """Every chunk of one model's baseline, as saved in ``baseline_logits/<model>.npz``."""

    meta: dict[str, Any]
    chunks: list[list[int]]
    stored: list[dv.BaselineChunk]

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {"meta": np.array(json.dumps(self.meta, sort_keys=True))}
        for i, (toks, ch) in enumerate(zip(self.chunks, self.stored, strict=True)):
            arrays |= {
                f"c{i}_tokens": np.asarray(toks, dtype=np.int32),
                # float64, exactly as computed: the nll sums of a resumed run's KL rows (read
                # back from here) equal an unbroken run's (computed in memory)
                f"c{i}_target": ch.target_logprobs.astype(np.float64),
                **{f"c{i}_{name}": a for name, a in ch.top.arrays().items()},
            }
            if ch.full_f16 is not None:
                arrays[f"c{i}_f16"] = ch.full_f16
        make_dirs(path.parent)
        write_atomic(path, lambda fh: np.savez(fh, **arrays))

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any]) -> BaselineStore | None:
        """The stored baseline, or None when absent or made with other settings."""
        if not path.exists():
            return None
        with np.load(path) as npz:
            if str(npz["meta"]) != json.dumps(meta, sort_keys=True):
                return None
            n = int(meta["n_chunks"])
            chunks = [npz[f"c{i}_tokens"].astype(int).tolist() for i in range(n)]
            stored = [
                dv.BaselineChunk(
                    dv.TopK(**{n: npz[f"c{i}_{n}"] for n in _TOPK_FIELDS if f"c{i}_{n}" in npz}),
                    npz[f"c{i}_target"].astype(np.float64),
                    npz[f"c{i}_f16"] if f"c{i}_f16" in npz.files else None,
                )
                for i in range(n)
            ]
        return cls(meta, chunks, stored)


def kl_method(base: dv.BaselineChunk) -> str:
    if base.full_f16 is not None:
        return "f16"
    top = base.top
    return f"top{top.k}+tail{top.m}" if top.m else f"top{top.k} (lower bound)"


def kld_row(
    variant: Variant, baseline: str, meta: dict[str, Any], index: int,
    base: dv.BaselineChunk, cmp: dv.ChunkComparison,
) -> KldRow:  # fmt: skip
    return KldRow(
        variant=variant.id,
        model=variant.model,
        level=variant.label,
        baseline=baseline,
        corpus_sha256=meta["corpus_sha256"],
        corpus_source=meta["corpus_source"],
        chunk=index,
        n_tokens=len(cmp.kl),
        kl_method=kl_method(base),
        kl=tuple(float(x) for x in cmp.kl),
        kl_topk=tuple(float(x) for x in cmp.kl_topk),
        same_top=int(np.sum(cmp.top1 == base.top.top1)),
        n_targets=len(cmp.target_logprobs),
        nll_sum=float(-np.sum(cmp.target_logprobs)),
        base_nll_sum=float(-np.sum(base.target_logprobs)),
    )


def _store_meta(
    base: Variant, chunks: list[list[int]], options: DivergenceOptions
) -> dict[str, Any]:
    source = str(options.corpus_path) if options.corpus_path else "items"
    return {
        "version": STORE_VERSION,
        "baseline": base.id,
        "top_k": options.top_k,
        "tail_samples": options.tail_samples,
        "keep_f16": options.keep_f16,
        "chunk_tokens": options.chunk_tokens,
        "corpus_source": source,
        "corpus_sha256": lg.corpus_digest(chunks),
        "n_chunks": len(chunks),
    }


def _baseline_store(
    run_dir: Path, base: Variant, text: str, options: DivergenceOptions
) -> BaselineStore:
    """Load the model's stored baseline rows, or compute and save them (atomically) and read
    them back."""
    assert base.path is not None
    with _load(base, options, True, options.chunk_tokens) as llm:
        chunks = lg.corpus_chunks(llm, text, options.corpus_tokens, options.chunk_tokens)
        meta = _store_meta(base, chunks, options)
        path = baseline_path(run_dir, base.model)
        store = BaselineStore.load(path, meta)
        if store is None:
            stored = [
                dv.compress_chunk(lg.token_logits(llm, c), c, options.top_k, options.keep_f16,
                                  options.tail_samples, seed=i)
                for i, c in enumerate(chunks)
            ]  # fmt: skip
            BaselineStore(meta, chunks, stored).save(path)
            # the rows as stored, so every KL row is computed from the same numbers whether
            # the baseline was computed in this run or read back after a kill and a resume
            store = BaselineStore.load(path, meta)
            assert store is not None
    return store


def _kld_pass(
    variant: Variant,
    store: BaselineStore,
    done: frozenset[Key],
    log: AppendLog,
    options: DivergenceOptions,
) -> int:
    assert variant.path is not None
    digest = store.meta["corpus_sha256"]
    todo = pending(range(len(store.chunks)), lambda i: (variant.id, digest, i), done)
    if not todo:
        return 0
    with _load(variant, options, True, options.chunk_tokens) as llm:
        for i in todo:
            tokens = store.chunks[i]
            cmp = dv.compare_chunk(store.stored[i], lg.token_logits(llm, tokens), tokens)
            log.append(
                kld_row(variant, store.meta["baseline"], store.meta, i, store.stored[i], cmp)
            )
    return len(todo)


def _groups(
    variants: Sequence[Variant], baseline_id_by_model: Mapping[str, str],
    outcome: DivergenceOutcome,
) -> dict[str, list[Variant]]:  # fmt: skip
    """Variants with a local file, per model, the model's baseline first."""
    groups: dict[str, list[Variant]] = {}
    for variant in variants:
        if variant.path is None:
            outcome.skipped_variants.append(variant.id)
            continue
        groups.setdefault(variant.model, []).append(variant)
    for model, members in groups.items():
        base_id = baseline_id_by_model.get(model)
        ids = [v.id for v in members]
        if base_id not in ids:
            raise ValueError(f"model {model!r}: baseline {base_id!r} is not among {ids}")
        members.sort(key=lambda v: v.id != base_id)
    return groups


def run_divergence(
    run_dir: Path,
    variants: Sequence[Variant],
    items: Sequence[MCItem],
    baseline_id_by_model: Mapping[str, str],
    options: DivergenceOptions | None = None,
    progress: Reporter = SILENT,
) -> DivergenceOutcome:
    """Token-level KL of every variant with a local file vs its model's baseline; resumable."""
    options = options or DivergenceOptions()
    outcome = DivergenceOutcome()
    groups = _groups(variants, baseline_id_by_model, outcome)
    text = lg.corpus_text(items, options.corpus_path)
    if not options.kld or not text.strip():
        return outcome
    manifest = read_manifest(run_dir)  # None when called outside a run (tests, benches)
    config = None if manifest is None else manifest.get("config_hash")
    with AppendLog(run_dir / KLD, config) as kld:
        done = logged_keys(run_dir, KldRow, manifest)  # after AppendLog cut a torn last line
        for members in groups.values():
            base = members[0]
            progress.say(f"baseline logits {base.id}")
            store = _baseline_store(run_dir, base, text, options)
            for variant in members:
                progress.say(f"token KL {variant.id}")
                outcome.kld_rows += _kld_pass(variant, store, done, kld, options)
    return outcome


def run_divergence_phase(
    study: Study, out: Path, variants: Sequence[Variant], progress: Reporter = SILENT
) -> None:
    """Token-level KL vs each model's baseline file (variants held as local GGUF files)."""
    spec = study.divergence
    local = [v for v in variants if v.path is not None]
    if not local or not spec.kld:
        return
    options = DivergenceOptions(
        threads=study.threads,
        corpus_tokens=spec.corpus_tokens,
        chunk_tokens=spec.chunk_tokens,
        top_k=spec.top_k,
        tail_samples=spec.tail_samples,
        corpus_path=spec.corpus_path,
        kld=spec.kld,
        gpu_layers={m.name: study.gpu_layers_for(m) for m in study.models},
    )
    run_divergence(out, local, mc_items(study), study.baseline_variants(), options, progress)
