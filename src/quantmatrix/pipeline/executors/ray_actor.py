"""The Ray side of the executor: the actor that holds one variant's session on a node, and
joining the cluster (once per process), its nodes and their resources.

Imported only by ``ray_executor.py`` and by ``quantmatrix doctor --address``.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import ray

from quantmatrix.backends.base import BackendError
from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.executors.base import BackendFactory, SessionStats, Shard, ShardResult
from quantmatrix.pipeline.executors.placement import SLOT
from quantmatrix.pipeline.executors.session import VariantSession


class VariantActor:
    """Runs in a Ray worker: one variant's session; errors come back as one line of text."""

    def __init__(
        self, variant: Variant, spec: ModelSpec, study: Study, factory: BackendFactory
    ) -> None:
        node = ray.get_runtime_context().get_node_id()
        self.where = f"{socket.gethostname()}:{node[:8]}"
        self.error: str | None = None
        self.session: VariantSession | None = None
        try:
            self.session = VariantSession(variant, spec, study, factory, self.where)
        except BackendError as exc:
            self.error = str(exc)

    def ready(self) -> str | None:
        return self.error

    def run(self, shard: Shard) -> ShardResult | str:
        assert self.session is not None
        try:
            return self.session.run(shard)
        except BackendError as exc:
            return str(exc)

    def stats(self) -> SessionStats:
        assert self.session is not None
        return self.session.stats()

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


REMOTE_: Any = None


def remote_class() -> Any:
    global REMOTE_
    if REMOTE_ is None:
        REMOTE_ = ray.remote(max_restarts=0, max_task_retries=0)(VariantActor)
    return REMOTE_


def connect(address: str | None) -> None:
    """Join the cluster once per process (``address`` None: RAY_ADDRESS, else auto)."""
    if ray.is_initialized():
        return
    where = address or os.environ.get("RAY_ADDRESS") or "auto"
    try:
        ray.init(address=where, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendError(
            f"cannot join the Ray cluster at {where!r}: {first}; start one with "
            "`ray start --head` or pass --address HOST:PORT"
        ) from None


def slot_nodes() -> list[dict[str, Any]]:
    """The alive nodes that offer the study's slot resource."""
    nodes: Any = ray.nodes  # untyped in Ray
    return [n for n in nodes() if n.get("Alive") and n["Resources"].get(SLOT, 0) >= 1]


def cluster_facts(address: str | None) -> dict[str, Any]:
    """The cluster's nodes and resources, for ``quantmatrix doctor --address``."""
    try:
        connect(address)
    except BackendError as exc:
        return {"address": address or os.environ.get("RAY_ADDRESS"), "error": str(exc)}
    nodes_fn: Any = ray.nodes
    nodes = [
        {
            "node": n["NodeID"][:8],
            "host": n.get("NodeManagerHostname") or n.get("NodeManagerAddress"),
            "ip": n.get("NodeManagerAddress"),
            "alive": bool(n.get("Alive")),
            "resources": {
                k: v for k, v in sorted(n["Resources"].items()) if not k.startswith("node:")
            },
        }
        for n in nodes_fn()
    ]
    return {"address": address or os.environ.get("RAY_ADDRESS") or "auto",
            "ray": ray.__version__, "slot": SLOT, "nodes": nodes}  # fmt: skip
