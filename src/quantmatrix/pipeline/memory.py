"""The memory phase: every variant's peak memory at several context lengths (-> one
:class:`ContextMemoryRow` per (variant, context) in ``memory.jsonl``), when the study has a
``memory:`` section.

The contexts are ``memory.contexts`` and the study's own ``context_length``. Each measurement
runs in a fresh child process (``backends/context_memory.py``: the variant's KV-cache type,
the context filled as ``memory.fill`` says), so nothing of this process is counted and a
crash there is a result here. Backends without a memory probe (servers: they hold their own
memory) are left out and named. Resumable like every phase: a (variant, context) whose row the
log holds is never measured again; a failed measurement writes no row, is named, and is tried
again by a rerun.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from quantmatrix.backends.base import BackendError
from quantmatrix.backends.context_memory import ContextMemory
from quantmatrix.backends.registry import memory_probe
from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.gguf_info import kv_cache_bytes
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.resume import logged_keys, pending
from quantmatrix.progress import SILENT, Reporter
from quantmatrix.runlog import MEMORY, AppendLog, ContextMemoryRow, read_manifest

Unit = tuple[ModelSpec, Variant, int]


@dataclass
class Measured:
    rows: int = 0
    failed: list[str] = field(default_factory=list)  # one line per failed measurement
    skipped_variants: list[str] = field(default_factory=list)  # no probe: servers


def memory_row(variant: Variant, found: ContextMemory, session: str) -> ContextMemoryRow:
    path = None if variant.path is None else Path(variant.path)
    estimate = None
    if path is not None and path.exists():
        estimate = kv_cache_bytes(path, found.n_ctx, variant.kv_cache)
    return ContextMemoryRow(
        variant=variant.id, model=variant.model, level=variant.label,
        kv_cache=found.kv_cache, n_ctx=found.n_ctx, flash_attn=found.flash_attn,
        fill=found.fill, filled_tokens=found.filled_tokens, peak_bytes=found.peak_bytes,
        basis=found.basis, rss_before_bytes=found.rss_before_bytes,
        rss_peak_bytes=found.rss_peak_bytes, model_bytes=found.model_bytes,
        kv_bytes=found.kv_bytes, compute_bytes=found.compute_bytes,
        output_bytes=found.output_bytes, vram_bytes=found.vram_bytes,
        offloaded=found.offloaded, kv_estimate_bytes=estimate, fill_s=found.fill_s,
        session=session or None,
    )  # fmt: skip


def units(study: Study, variants: Sequence[tuple[ModelSpec, Variant]], out: Measured) -> list[Unit]:
    """(spec, variant, context) for every variant whose backend has a memory probe."""
    assert study.memory is not None
    lengths = study.memory.lengths(study.context_length)
    found: list[Unit] = []
    for spec, variant in variants:
        if memory_probe(spec.backend) is None:
            out.skipped_variants.append(variant.id)
            continue
        found += [(spec, variant, n) for n in lengths]
    return found


def run_memory_phase(
    study: Study,
    out: Path,
    variants: Sequence[tuple[ModelSpec, Variant]],
    session: str = "",
    progress: Reporter = SILENT,
) -> Measured:
    """Measure what the log does not hold yet; a failure is named, never fatal."""
    measured = Measured()
    if study.memory is None or not variants:
        return measured
    todo_all = units(study, variants, measured)
    manifest = read_manifest(out)
    config = None if manifest is None else manifest.get("config_hash")
    with AppendLog(out / MEMORY, config) as log:
        done = logged_keys(out, ContextMemoryRow, manifest)  # after a torn last line is cut
        todo = pending(todo_all, lambda u: (u[1].id, u[2]), done)
        progress.phase("memory vs context", len(todo))
        for spec, variant, n_ctx in todo:
            probe = memory_probe(spec.backend)
            assert probe is not None
            try:
                found = probe(variant, spec, study, n_ctx)
            except BackendError as exc:
                measured.failed.append(f"{variant.id} at {n_ctx} tokens: {exc}")
                progress.say(f"memory: {measured.failed[-1]}")
                continue
            log.append(memory_row(variant, found, session))
            measured.rows += 1
            progress.advance()
    return measured
