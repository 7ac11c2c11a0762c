"""The ladder phase: resolve every model's source and build each missing level.

Levels are llama.cpp's quantizer's output, cached by (source SHA-256, level) in the cache
folder (``models/ladder.py``); models served by Ollama, an OpenAI-compatible server or the fake
backend have no file here (the server or the script holds the weights).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.ladder import Variant, build_level, imatrix_plan
from quantmatrix.models.sources import ResolvedSource, resolve_source
from quantmatrix.progress import Reporter


def threads(study: Study) -> int:
    return study.threads or os.cpu_count() or 1


def fileless_variant(spec: ModelSpec, level: str) -> Variant:
    where = spec.server_model(level) if spec.backend in ("ollama", "openai") else "fake"
    return Variant(spec.name, level, None, None, where, spec.backend, False)


def with_kv_types(spec: ModelSpec, variants: list[Variant]) -> list[tuple[ModelSpec, Variant]]:
    """Each level's variant once per KV-cache type of the model (the same file), in the
    ladder's order: by level, then KV type (``ModelSpec.ordered_labels``)."""
    out = [(spec, replace(v, kv_cache=kv)) for v in variants for kv in spec.kv_types]
    order = spec.ordered_labels
    return sorted(out, key=lambda sv: order.index(sv[1].label))


def build_variants(
    study: Study, cache: Path, progress: Reporter
) -> tuple[list[ResolvedSource], list[tuple[ModelSpec, Variant]]]:
    """Resolve every source and build every missing level (cached by source SHA-256 and level)."""
    sources: list[ResolvedSource] = []
    variants: list[tuple[ModelSpec, Variant]] = []
    for spec in study.models:
        if spec.backend != "llamacpp":
            variants += with_kv_types(
                spec, [fileless_variant(spec, lv) for lv in spec.ordered_levels]
            )
            continue
        progress.phase(f"ladder {spec.name}", len(spec.levels))
        source = resolve_source(spec.name, spec.source, cache)
        sources.append(source)
        plan = imatrix_plan(spec, study, threads(study))
        built = []
        for level in spec.ordered_levels:
            built.append(build_level(source, level, cache, threads(study), imatrix=plan))
            progress.advance()
        variants += with_kv_types(spec, built)
    return sources, variants
