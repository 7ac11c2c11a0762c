"""What a Ray actor asks of its node: CPUs (the engine's threads), memory, GPUs, a slot.

Plain data, computed on the driver, so it is tested without a cluster. Every node the study may
use offers the custom resource :data:`SLOT` (``ray start --resources '{"quantmatrix": 1}'``):
an actor whose speed is measured takes the whole slot, so nothing else of the study runs on its
node meanwhile; quality-only work (``placement: pack``) takes :data:`PACK_SHARE` of it and may
share a node with other packed actors, as far as CPUs and memory allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.gguf_info import kv_cache_bytes
from quantmatrix.models.ladder import Variant

SLOT = "quantmatrix"
PACK_SHARE = 0.001
MEMORY_MARGIN = 1.25  # over file + KV: compute buffers, the process itself
SERVER_MEMORY = 256 * 2**20  # a server backend's client, or the fake backend


@dataclass(frozen=True)
class Request:
    num_cpus: int
    num_gpus: int
    memory: int  # bytes
    slot: float  # of SLOT

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``ActorClass.options``."""
        return {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "memory": self.memory,
            "resources": {SLOT: self.slot},
        }


def gpu_layers(spec: ModelSpec, study: Study) -> int:
    """The GPU layers the actor loads with, decided on the driver (-1: all): the study's, or
    the driver's build default, so a GPU is asked for exactly when one is used."""
    if spec.backend != "llamacpp":
        return 0
    layers = study.gpu_layers_for(spec)
    if layers is None:
        from quantmatrix.engine.settings import default_gpu_layers

        layers = default_gpu_layers()
    return layers


def memory_bytes(variant: Variant, study: Study) -> int:
    """File size plus the KV cache (of the variant's KV type) of every sequence, with a
    margin."""
    if variant.path is None:
        return SERVER_MEMORY
    path = Path(variant.path)
    size = (
        path.stat().st_size if path.exists() else (variant.info.size_bytes if variant.info else 0)
    )
    seqs = 1 + (study.batch_size if study.batch_size > 1 else 0)
    kv = kv_cache_bytes(path, study.context_length, variant.kv_cache) if path.exists() else None
    kv_all = (kv if kv is not None else size // 10) * seqs
    return int((size + kv_all) * MEMORY_MARGIN)


def request_for(
    spec: ModelSpec, variant: Variant, study: Study, threads: int, exclusive: bool
) -> Request:
    layers = gpu_layers(spec, study)
    return Request(
        num_cpus=threads,
        num_gpus=1 if layers != 0 else 0,
        memory=memory_bytes(variant, study),
        slot=1.0 if exclusive else PACK_SHARE,
    )


def worker_study(study: Study, spec: ModelSpec, threads: int) -> Study:
    """The study as the actor sees it: the thread count and GPU layers made explicit (Ray sets
    OMP_NUM_THREADS from num_cpus, which is not ggml's thread pool)."""
    update: dict[str, Any] = {"threads": threads}
    if spec.backend == "llamacpp":
        layers = gpu_layers(spec, study)
        update["gpu_layers"] = "all" if layers == -1 else layers
    return study.model_copy(update=update)
