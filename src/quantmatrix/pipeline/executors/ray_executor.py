"""The Ray executor: shards handed out to long-lived actors over a Ray cluster.

One actor per (node, variant) loads the model once, warms it up once and answers shard after
shard (``session.py``); the driver hands the next shard of a variant to whichever of its actors
is free (``ray.wait``), so a slow host does not hold the study up, and writes every row itself
(``delivery.py``). An actor asks for the engine's thread count in CPUs, the file plus its KV
cache in memory, a GPU where layers are offloaded, and the node's whole ``quantmatrix`` slot
when its speed is measured (``placement.py``). A shard whose actor or node is lost goes back
to the queue and is answered elsewhere (its rows are keyed, so nothing is written twice).

The connection is made once per process and kept; actors are kept between calls of the
evaluation phase and reused for the same variant (adaptive rounds call it again and again).
Ray is imported here and in ``ray_actor.py`` only, and those only when the ray executor is
chosen (or ``doctor --address`` lists a cluster).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import ray
from ray.exceptions import RayError

from quantmatrix.backends.base import BackendError
from quantmatrix.config import ExecutorSpec, Study
from quantmatrix.models.hashing import default_cache, sha256_file
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline.executors.base import BackendFactory, Shard, VariantWork
from quantmatrix.pipeline.executors.delivery import Delivery
from quantmatrix.pipeline.executors.local import LocalExecutor
from quantmatrix.pipeline.executors.placement import SLOT, request_for, worker_study
from quantmatrix.pipeline.executors.ray_actor import connect, remote_class, slot_nodes

WAIT_S = 5.0  # between checks while nothing comes back
SERVER_BACKENDS = ("ollama", "openai")  # their models live on servers: no actor holds them


@dataclass
class _Actor:
    handle: Any
    work: VariantWork
    key: tuple[str, ...]
    started: bool = False
    shard: Shard | None = None
    ran: bool = False  # answered a shard this call: its stats go into the variant's row
    cached: bool = False  # kept from an earlier call
    sent: float = 0.0  # when its shard was handed out (perf_counter)

    @property
    def idle(self) -> bool:
        return self.started and self.shard is None


@dataclass
class _Queue:
    work: VariantWork
    key: tuple[str, ...]  # the key its actors have
    shards: deque[Shard]
    tries: dict[int, int] = field(default_factory=dict)
    starts: int = 0
    opened: bool = False  # a session of this variant has started in this call
    failed: bool = False


class RayExecutor:
    """The scheduler on the driver; its actors are kept in :data:`_CACHE` between calls."""

    def __init__(self, spec: ExecutorSpec, factory: BackendFactory) -> None:
        self.spec, self.factory = spec, factory
        self.exclusive = spec.placement == "exclusive"

    def run(self, study: Study, works: Sequence[VariantWork], delivery: Delivery) -> None:
        """Server models from the driver (threads per endpoint, no Ray worker needed), then
        the rest on the cluster."""
        served = [w for w in works if w.spec.backend in SERVER_BACKENDS]
        if served:
            LocalExecutor(self.factory).run(study, served, delivery)
        rest = [w for w in works if w.spec.backend not in SERVER_BACKENDS]
        if rest:
            self._on_cluster(study, rest, delivery)

    def _on_cluster(self, study: Study, works: Sequence[VariantWork], delivery: Delivery) -> None:
        connect(self.spec.address)
        nodes = slot_nodes()
        if not nodes:
            raise BackendError(
                f"no node of the Ray cluster offers the {SLOT!r} resource; start each node "
                f"with --resources '{{\"{SLOT}\": 1}}' (README: Several hosts)"
            )
        cpus = [int(n["Resources"].get("CPU", 0)) for n in nodes]
        threads = study.threads or max(1, min(cpus))
        if threads > max(cpus):
            raise BackendError(
                f"threads {threads} is more than any Ray node's CPUs ({max(cpus)}); lower the "
                "study's threads or start the nodes with more --num-cpus"
            )
        delivery.progress.phase("eval (ray)", sum(w.todo for w in works))
        run = _Run(self, study, works, delivery, max(1, threads))
        run.loop()


_CACHE: list[_Actor] = []  # actors alive between calls, reused for the same variant


@dataclass
class RunStats:
    """What one call did (``LAST``): for the tests and bench/bench_ray.py."""

    started: int = 0  # actors started
    reused: int = 0  # actors kept from an earlier call that answered a shard
    shards: int = 0
    lost: int = 0  # shards handed out again after their actor or node was lost
    roundtrip_s: float = 0.0  # hand-out to result, summed over shards
    compute_s: float = 0.0  # the backends' own time on them

    @property
    def overhead_per_shard_s(self) -> float:
        """The executor's own cost of a shard: round trip minus the backend's time."""
        return (self.roundtrip_s - self.compute_s) / self.shards if self.shards else 0.0


LAST = RunStats()


class _Run:
    """One call's scheduling: start actors, feed them shards, take results, retry losses."""

    def __init__(
        self,
        executor: RayExecutor,
        study: Study,
        works: Sequence[VariantWork],
        delivery: Delivery,
        threads: int,
    ) -> None:
        self.ex, self.study, self.delivery, self.threads = executor, study, delivery, threads
        self.queues = {w.id: _Queue(w, self._key(w), deque(w.shards)) for w in works}
        self.waits: dict[Any, _Actor] = {}
        self.stats = RunStats()
        self.actors: list[_Actor] = []
        for actor in list(_CACHE):  # kept actors: reused, or spare until room is needed
            _CACHE.remove(actor)
            actor.ran, actor.cached = False, True
            q = self._queue(actor)
            if q is not None:
                actor.work, q.opened = q.work, True
            self.actors.append(actor)

    def _key(self, work: VariantWork) -> tuple[str, ...]:
        spec, study = work.spec.model_dump_json(), self.study.config_hash()
        return (work.id, str(work.variant.sha256), spec, study, self.ex.spec.placement,
                repr(self.ex.factory))  # fmt: skip

    def loop(self) -> None:
        while True:
            self._close_finished()
            self._staff()
            self._feed()
            if not self.waits:
                break
            ready, _ = ray.wait(list(self.waits), num_returns=1, timeout=WAIT_S)
            for ref in ready:
                self._take(ref, self.waits.pop(ref))
        for q in list(self.queues.values()):  # nothing in flight, nothing could be started
            self._fail(q, "no node of the Ray cluster could take its actor")
            self.delivery.finish(q.work)
        _CACHE.extend(self.actors)
        LAST.__dict__.update(self.stats.__dict__)

    # -- actors ---------------------------------------------------------------------------

    def _capacity(self) -> int:
        nodes = slot_nodes()
        if self.ex.exclusive:
            return len(nodes)
        return sum(int(n["Resources"].get("CPU", 0)) // self.threads for n in nodes)

    def _needs(self, q: _Queue) -> int:
        """How many more actors the variant could use now."""
        if q.failed:
            return 0
        mine = self._mine(q)
        if not q.opened and not q.work.shards:
            return 1 if not mine else 0  # no samples left, but no session row yet
        busy = sum(a.shard is not None for a in mine)
        return max(0, len(q.shards) + busy - len(mine))

    def _staff(self) -> None:
        order = [q for q in self.queues.values() if self._needs(q) > 0]
        if not order:
            return
        capacity = self._capacity()
        for round_one in (True, False):  # first one actor per variant, then more
            for q in order:
                while self._needs(q) > 0 and self._make_room(capacity):
                    self._start(q)
                    if round_one:
                        break

    def _make_room(self, capacity: int) -> bool:
        if len(self.actors) < capacity:
            return True
        spare = [a for a in self.actors if a.idle and not self._left(a)]
        if not spare:
            return False
        self._retire(spare[0])
        return True

    def _start(self, q: _Queue) -> None:
        work = q.work
        q.starts += 1
        if q.starts > self.ex.spec.retries + len(work.shards) + 1:
            self._fail(q, "its actors kept dying while loading the model")
            return
        request = request_for(work.spec, work.variant, self.study, self.threads, self.ex.exclusive)
        if not fits_a_node(request.options(), slot_nodes()):
            self._fail(q, f"no node of the Ray cluster has room for its actor ({request})")
            return
        study = worker_study(self.study, work.spec, self.threads)
        variant = work.variant
        if variant.path is not None and variant.sha256 is None:
            variant = _with_sha(variant)
        handle = (
            remote_class()
            .options(**request.options(), scheduling_strategy="SPREAD")
            .remote(variant, work.spec, study, self.ex.factory)
        )
        actor = _Actor(handle, work, self._key(work))
        self.stats.started += 1
        self.actors.append(actor)
        self.waits[handle.ready.remote()] = actor

    def _queue(self, actor: _Actor) -> _Queue | None:
        """The queue this actor serves in this call (None: a spare kept actor)."""
        q = self.queues.get(actor.work.id)
        return q if q is not None and q.key == actor.key else None

    def _mine(self, q: _Queue) -> list[_Actor]:
        return [a for a in self.actors if a.key == q.key]

    def _left(self, actor: _Actor) -> int:
        q = self._queue(actor)
        return 0 if q is None or q.failed else len(q.shards)

    def _retire(self, actor: _Actor) -> None:
        """Stop an actor (its stats kept first if its variant's row is still to come)."""
        q = self._queue(actor)
        if q is not None and not q.failed and actor.ran and actor.started:
            self._stats(actor)
            actor.ran = False
        if actor in self.actors:
            self.actors.remove(actor)
        ray.kill(actor.handle)

    # -- shards ---------------------------------------------------------------------------

    def _feed(self) -> None:
        for actor in self.actors:
            q = self._queue(actor)
            if actor.idle and q is not None and q.shards and not q.failed:
                actor.shard, actor.sent = q.shards.popleft(), time.perf_counter()
                self.waits[actor.handle.run.remote(actor.shard)] = actor

    def _take(self, ref: Any, actor: _Actor) -> None:
        q = self._queue(actor)
        assert q is not None  # a variant's waits are dropped with it
        try:
            got = ray.get(ref)
        except RayError as exc:
            self._lost(actor, q, exc)
            return
        if not actor.started:
            actor.started, q.opened = True, True
            if got is not None:
                self._fail(q, str(got))
            return
        shard, actor.shard = actor.shard, None
        if isinstance(got, str):
            self._fail(q, got)
            return
        assert shard is not None
        self.stats.reused += actor.cached and not actor.ran
        actor.ran = True
        self.stats.shards += 1
        self.stats.roundtrip_s += time.perf_counter() - actor.sent
        self.stats.compute_s += got.eval_wall_s
        self.delivery.shard(got)

    def _lost(self, actor: _Actor, q: _Queue, exc: Exception) -> None:
        """The actor or its node is gone: its shard goes back to the front of the queue."""
        if actor in self.actors:
            self.actors.remove(actor)
        with contextlib.suppress(RayError):  # an error in a method leaves the actor alive
            ray.kill(actor.handle)
        if actor.ran:
            q.opened = True  # its rows are in; its stats are lost with it
        shard, actor.shard = actor.shard, None
        if shard is None or q.failed:
            return
        tries = q.tries[shard.number] = q.tries.get(shard.number, 0) + 1
        if tries > self.ex.spec.retries:
            self._fail(q, f"shard {shard.number} lost {tries} times ({type(exc).__name__})")
            return
        q.shards.appendleft(shard)
        self.stats.lost += 1

    def _fail(self, q: _Queue, message: str) -> None:
        q.failed = True
        q.shards.clear()
        self.delivery.fail(q.work.id, message)
        self._drop(self._mine(q))

    def _drop(self, actors: list[_Actor]) -> None:
        """Stop these actors and forget what they were asked."""
        for actor in actors:
            self.actors.remove(actor)
            ray.kill(actor.handle)
        for ref, actor in list(self.waits.items()):
            if actor in actors:
                del self.waits[ref]

    def _close_finished(self) -> None:
        """A variant whose shards are all in: its actors' stats, then its session row."""
        for vid, q in list(self.queues.items()):
            mine = self._mine(q)
            if q.shards or any(a.shard is not None for a in mine):
                continue
            if not q.failed and not q.opened:
                continue  # not started yet
            self._drop([a for a in mine if not a.started])  # extras still loading: not needed
            mine = self._mine(q)
            for actor in mine:
                if actor.ran or not q.work.shards:
                    self._stats(actor)
            self.delivery.finish(q.work)
            del self.queues[vid]

    def _stats(self, actor: _Actor) -> None:
        try:
            stats = ray.get(actor.handle.stats.remote())
        except RayError:
            if actor in self.actors:
                self.actors.remove(actor)
            return
        # the variant's row says whether its speed was measured alone on its node
        backend = {**stats.backend, "placement": self.ex.spec.placement}
        self.delivery.session(actor.work.id, replace(stats, backend=backend))


def fits_a_node(options: dict[str, Any], nodes: list[dict[str, Any]]) -> bool:
    """Whether some node has, in total, what the actor asks for (else it would wait forever)."""
    asked = {"CPU": options["num_cpus"], "GPU": options["num_gpus"], "memory": options["memory"],
             **options["resources"]}  # fmt: skip
    return any(all(n["Resources"].get(k, 0) >= v for k, v in asked.items() if v) for n in nodes)


def _with_sha(variant: Variant) -> Variant:
    assert variant.path is not None
    return replace(variant, sha256=sha256_file(variant.path, default_cache()))


def create(spec: ExecutorSpec, factory: BackendFactory) -> RayExecutor:
    """The registry's factory."""
    return RayExecutor(spec, factory)


def disconnect() -> None:
    """Stop the kept actors and leave the cluster (the next call joins again)."""
    while _CACHE:
        with contextlib.suppress(RayError):
            ray.kill(_CACHE.pop().handle)
    if ray.is_initialized():
        ray.shutdown()
