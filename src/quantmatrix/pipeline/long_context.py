"""The long-context phase (-> :class:`LongContextRow`): does a level's token KL vs its baseline
grow with the context?

The token-KL phase (``divergence.py``) cuts its corpus into short chunks; here each of
``long_context.documents`` long documents is one sequence, from its first token to the last
bucket's end (capped at the model's training context), evaluated window after window on one
growing KV cache (``scoring/windows.py``), so the row at position ``p`` has seen ``p + 1``
tokens. The baseline's rows are stored as the KL phase stores them (top-k + sampled tail,
``baseline_logits/<model>.long.npz``); each variant's rows are compared with them window by
window (``scoring/divergence.compare_chunk``) and summed per bucket of positions
(``scoring/buckets.py``): one row per (variant, document, bucket), written as soon as the
bucket is complete. The baseline is compared with itself in the same pass that stores it
(exactly 0: the check that the comparison is sound).

Documents: the first ones of the corpus's seeded order (``data/long_documents.py``) that
reach the cap in the baseline's tokens; when too few do, the longest of the others, which then
cover the buckets they reach (each row says how many positions it holds).

Resume: a (variant, document) with a bucket row missing is evaluated again from its first token
(the context must be rebuilt) up to the end of its last missing bucket; rows already written are
not written again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.backends import fake_logits
from quantmatrix.config import LongContextSpec, ModelSpec, Study
from quantmatrix.data.long_documents import Document, load_documents
from quantmatrix.engine.load import open_for_eval
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.divergence import BaselineStore, baseline_path
from quantmatrix.pipeline.long_document import (
    BLOCK,
    KL_METHOD,
    TAIL_SAMPLES,
    TOP_K,
    WINDOW,
    DocPass,
    DocRows,
    Emit,
    Restart,
)
from quantmatrix.pipeline.resume import logged_keys
from quantmatrix.progress import SILENT, Reporter
from quantmatrix.runlog import LONG_CONTEXT, AppendLog, LongContextRow, read_manifest
from quantmatrix.runlog.rows import Key
from quantmatrix.scoring.buckets import BucketStats
from quantmatrix.scoring.logits import corpus_digest
from quantmatrix.scoring.windows import WindowModel

STORE_VERSION = 1

ModelOpener = Callable[[Variant, ModelSpec, Study, int], AbstractContextManager[WindowModel] | None]


@contextmanager
def _llama(variant: Variant, spec: ModelSpec, study: Study, n_ctx: int) -> Iterator[WindowModel]:
    from quantmatrix.engine.settings import machine_settings
    from quantmatrix.scoring.windows import LlamaWindows

    assert variant.path is not None
    engine = machine_settings(study.gpu_layers_for(spec))
    # a context of at least one window: llama-cpp-python cuts n_batch to n_ctx
    size = max(n_ctx, WINDOW)
    llm = open_for_eval(variant.path, size, study.threads, False, n_batch=WINDOW, engine=engine)
    try:
        yield LlamaWindows(llm)
    finally:
        llm.close()


def default_opener(
    variant: Variant, spec: ModelSpec, study: Study, n_ctx: int
) -> AbstractContextManager[WindowModel] | None:
    """llama.cpp for a variant held as a local file; the scripted rows for the fake backend;
    None (no rows to read) for a server."""
    if variant.path is not None:
        return _llama(variant, spec, study, n_ctx)
    if spec.backend == "fake":
        return nullcontext(fake_logits.create(variant, spec, study))
    return None


@dataclass(frozen=True)
class Corpus:
    """The documents chosen for one model, as the baseline tokenized them."""

    source: str
    ids: tuple[str, ...]
    tokens: tuple[list[int], ...]
    cap: int
    bounds: tuple[tuple[int, int], ...]  # the buckets, capped

    @property
    def digest(self) -> str:
        return corpus_digest(self.tokens)


def choose_documents(
    model: WindowModel, docs: Sequence[Document], spec: LongContextSpec, source: str
) -> Corpus:
    """The first documents reaching the cap (the last bucket's end, at most the model's
    training context), then the longest others if too few do."""
    cap = min(spec.cap, model.context_limit())
    bos = model.bos()
    room = cap - len(bos)
    full: list[tuple[str, list[int]]] = []
    short: list[tuple[str, list[int]]] = []
    for doc in docs:
        body = model.text_tokens(doc.text)[:room]
        (full if len(body) == room else short).append((doc.id, bos + body))
        if len(full) == spec.documents:
            break
    short.sort(key=lambda d: -len(d[1]))
    picked = full + [d for d in short if len(d[1]) >= 2][: spec.documents - len(full)]
    bounds = tuple((s, min(e, cap)) for s, e in spec.bounds() if s < cap)
    return Corpus(source, tuple(i for i, _ in picked), tuple(t for _, t in picked), cap, bounds)


def restart_keys(corpus: Corpus) -> list[tuple[int, int]]:
    """(document, bucket) of every control: each bucket but the first that the document reaches."""
    return [
        (d, b) for d, tokens in enumerate(corpus.tokens)
        for b, (start, _) in enumerate(corpus.bounds) if 0 < start < len(tokens)
    ]  # fmt: skip


def _meta(base: Variant, corpus: Corpus) -> dict[str, Any]:
    restarts = restart_keys(corpus)
    return {
        "version": STORE_VERSION,
        "kind": "long_context",
        "baseline": base.id,
        "top_k": TOP_K,
        "tail_samples": TAIL_SAMPLES,
        "window": WINDOW,
        "cap": corpus.cap,
        "corpus_source": corpus.source,
        "corpus_sha256": corpus.digest,
        "documents": list(corpus.ids),
        "restarts": [list(k) for k in restarts],
        "n_chunks": len(corpus.tokens) + len(restarts),
    }


def pack(meta: dict[str, Any], corpus: Corpus, docs: Sequence[DocRows]) -> BaselineStore:
    """Every document's rows as one store: the sequences, then the controls in key order."""
    keys = restart_keys(corpus)
    chunks = list(corpus.tokens)
    for d, b in keys:
        start, end = corpus.bounds[b]
        chunks.append(corpus.tokens[d][start : min(start + WINDOW, end)])
    stored = [r.full for r in docs] + [docs[d].restarts[b] for d, b in keys]
    return BaselineStore(meta, chunks, stored)


def unpack(store: BaselineStore, corpus: Corpus) -> list[DocRows]:
    n = len(corpus.tokens)
    docs = [DocRows(store.stored[d], {}) for d in range(n)]
    for i, (d, b) in enumerate(restart_keys(corpus)):
        docs[d].restarts[b] = store.stored[n + i]
    return docs


@dataclass
class _Writer:
    """Rows of one model's probe into ``long_context.jsonl``, each key once."""

    log: AppendLog
    done: frozenset[Key]
    corpus: Corpus
    baseline: str
    written: int = 0

    def missing(self, variant: Variant, document: int) -> frozenset[int]:
        n = len(self.corpus.tokens[document])
        return frozenset(
            b for b, (start, _) in enumerate(self.corpus.bounds)
            if start < n and (variant.id, self.corpus.digest, document, b) not in self.done
        )  # fmt: skip

    def emitter(self, variant: Variant, document: int) -> Emit:
        def emit(bucket: int, st: BucketStats, seconds: float, restart: Restart | None) -> None:
            self.log.append(self.row(variant, document, bucket, (st, restart), seconds))
            self.written += 1

        return emit

    def row(
        self, variant: Variant, document: int, bucket: int,
        stats: tuple[BucketStats, Restart | None], seconds: float,
    ) -> LongContextRow:  # fmt: skip
        c, (st, restart) = self.corpus, stats
        return LongContextRow(
            variant=variant.id, model=variant.model, level=variant.level, baseline=self.baseline,
            corpus_sha256=c.digest, corpus_source=c.source, document=document,
            document_id=c.ids[document], document_tokens=len(c.tokens[document]), bucket=bucket,
            start=st.start, end=st.end, n_tokens=st.n_tokens, kl_method=KL_METHOD,
            kl_sum=st.kl_sum, kl_topk_sum=st.kl_topk_sum, kl_max=st.kl_max,
            same_top=st.same_top, n_targets=st.n_targets, nll_sum=st.nll_sum,
            base_nll_sum=st.base_nll_sum, block_tokens=BLOCK, kl_block_means=st.block_means,
            restart_tokens=0 if restart is None else restart.tokens,
            restart_kl_sum=0.0 if restart is None else restart.kl_sum,
            restart_full_kl_sum=0.0 if restart is None else restart.full_kl_sum,
            eval_s=seconds,
        )  # fmt: skip


@dataclass(frozen=True)
class _Probe:
    """One model's probe: its baseline first (documents, stored rows), then each level."""

    study: Study
    spec: ModelSpec
    opener: ModelOpener
    out: Path
    progress: Reporter

    def open(self, variant: Variant) -> AbstractContextManager[WindowModel]:
        assert self.study.long_context is not None
        opened = self.opener(variant, self.spec, self.study, self.study.long_context.cap)
        if opened is None:
            raise ValueError(f"{variant.id}: no next-token rows to read (a server)")
        return opened

    def baseline(
        self, base: Variant, docs: tuple[Sequence[Document], str], log: AppendLog,
        done: frozenset[Key],
    ) -> tuple[_Writer, list[DocRows]]:  # fmt: skip
        """Choose the documents and store the baseline's rows (or load them), writing the
        baseline's own rows in the same pass."""
        lc = self.study.long_context
        assert lc is not None
        with self.open(base) as model:
            corpus = choose_documents(model, docs[0], lc, docs[1])
            writer = _Writer(log, done, corpus, base.id)
            meta = _meta(base, corpus)
            path = baseline_path(self.out, base.model).with_suffix(".long.npz")
            store = BaselineStore.load(path, meta)
            loaded = None if store is None else unpack(store, corpus)
            docs_rows = []
            for d, tokens in enumerate(corpus.tokens):
                wanted = writer.missing(base, d)
                if loaded is None or wanted:
                    one = DocPass(model, tokens, corpus.bounds, wanted, d)
                    stored = None if loaded is None else loaded[d]
                    docs_rows.append(one.run(stored, writer.emitter(base, d)))
                self.progress.advance()
            if loaded is None:
                loaded = docs_rows
                pack(meta, corpus, docs_rows).save(path)
        return writer, loaded

    def variant(self, variant: Variant, writer: _Writer, stored: list[DocRows]) -> None:
        corpus = writer.corpus
        todo = [d for d in range(len(corpus.tokens)) if writer.missing(variant, d)]
        if not todo:
            self.progress.advance(len(corpus.tokens))
            return
        with self.open(variant) as model:
            for d, tokens in enumerate(corpus.tokens):
                if d in todo:
                    one = DocPass(model, tokens, corpus.bounds, writer.missing(variant, d), d)
                    one.run(stored[d], writer.emitter(variant, d))
                self.progress.advance()


def check_corpus(study: Study) -> None:
    """A user's corpus is read before the run starts, so a bad path fails in one line then
    rather than after the evaluation (the packaged corpus is checked when it is read)."""
    lc = study.long_context
    if lc is not None and lc.documents and lc.corpus_path is not None:
        load_documents(lc.corpus_path, study.selection_seed)


def _members(study: Study, variants: Sequence[tuple[ModelSpec, Variant]],
             opener: ModelOpener) -> list[tuple[ModelSpec, list[Variant]]]:  # fmt: skip
    """Per model whose baseline has rows to read, its variants, baseline first (the opener is
    asked with ``n_ctx`` 0 whether a variant has rows at all; nothing opens until entered)."""
    out = []
    for spec in study.models:
        members = [v for s, v in variants if s.name == spec.name]
        base = next((v for v in members if v.level == spec.baseline_level), None)
        if base is None or opener(base, spec, study, 0) is None:
            continue
        members.sort(key=lambda v: v.id != base.id)
        out.append((spec, members))
    return out


def run_long_context_phase(
    study: Study,
    out: Path,
    variants: Sequence[tuple[ModelSpec, Variant]],
    opener: ModelOpener = default_opener,
    progress: Reporter = SILENT,
) -> int:
    """Token KL by position bucket on long documents, every variant with rows to read;
    resumable; returns the rows written."""
    lc = study.long_context
    if lc is None or not lc.documents:
        return 0
    groups = _members(study, variants, opener)
    if not groups:
        return 0
    docs = load_documents(lc.corpus_path, study.selection_seed)
    manifest = read_manifest(out)
    config = None if manifest is None else manifest.get("config_hash")
    written = 0
    with AppendLog(out / LONG_CONTEXT, config) as log:
        done = logged_keys(out, LongContextRow, manifest)  # after AppendLog cut a torn last line
        progress.phase("long context (token KL)", sum(len(m) for _, m in groups) * lc.documents)
        for spec, members in groups:
            probe = _Probe(study, spec, opener, out, progress)
            progress.say(f"long-context baseline {members[0].id}")
            writer, stored = probe.baseline(members[0], docs, log, done)
            for variant in members[1:]:
                progress.say(f"long-context token KL {variant.id}")
                probe.variant(variant, writer, stored)
            written += writer.written
    return written
