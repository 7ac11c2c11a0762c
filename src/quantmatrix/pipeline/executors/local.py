"""The local executor: today's loop in this process, one variant after another.

Each variant's backend is opened once and answers its shards in plan order; each row is
written the moment it is made. A model served by several endpoints (``ModelSpec.endpoints``)
gets one backend per endpoint, each in a thread of its own taking the next shard when it is
free (each backend keeps its own in-flight limit): server work needs no Ray.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from quantmatrix.backends.base import BackendError
from quantmatrix.config import ExecutorSpec, Study
from quantmatrix.pipeline.executors.base import BackendFactory, Shard, VariantWork
from quantmatrix.pipeline.executors.delivery import Delivery
from quantmatrix.pipeline.executors.session import VariantSession


class LocalExecutor:
    def __init__(self, factory: BackendFactory) -> None:
        self.factory = factory

    def run(self, study: Study, works: Sequence[VariantWork], delivery: Delivery) -> None:
        for work in works:
            delivery.progress.phase(f"eval {work.id}", work.todo)
            endpoints = work.spec.server_endpoints() if work.spec.endpoints else []
            if len(endpoints) > 1:
                self._spread(study, work, endpoints, delivery)
            else:
                self._one(study, work, delivery)
            delivery.finish(work)

    def _one(self, study: Study, work: VariantWork, delivery: Delivery) -> None:
        spec = work.spec.on_endpoint()
        try:
            session = VariantSession(work.variant, spec, study, self.factory)
        except BackendError as exc:
            delivery.fail(work.id, str(exc))
            return
        try:
            answer(session, work.shards, delivery)
            delivery.session(work.id, session.stats())
        except BackendError as exc:  # rows already written stay; a rerun resumes
            delivery.fail(work.id, str(exc))
        finally:
            session.close()

    def _spread(
        self, study: Study, work: VariantWork, endpoints: list[str | None], delivery: Delivery
    ) -> None:
        """One thread per endpoint, each taking the next shard from one queue."""
        shards: queue.Queue[Shard] = queue.Queue()
        for shard in work.shards:
            shards.put(shard)
        errors: list[str] = []

        def serve(endpoint: str | None) -> None:
            spec = work.spec.on_endpoint(endpoint)
            try:
                session = VariantSession(work.variant, spec, study, self.factory, str(endpoint))
            except BackendError as exc:
                errors.append(f"{endpoint}: {exc}")
                return
            try:
                while True:
                    try:
                        shard = shards.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        delivery.shard(session.run(shard, delivery.row))
                    except BackendError as exc:
                        shards.put(shard)  # another endpoint may answer it
                        errors.append(f"{endpoint}: {exc}")
                        break
                delivery.session(work.id, session.stats())
            finally:
                session.close()

        threads = [threading.Thread(target=serve, args=(e,), daemon=True) for e in endpoints]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not shards.empty() or (errors and not work.shards):
            delivery.fail(work.id, "; ".join(errors) or "shards left unanswered")


def answer(session: VariantSession, shards: Sequence[Shard], delivery: Delivery) -> None:
    for shard in shards:
        delivery.shard(session.run(shard, delivery.row))


def create(spec: ExecutorSpec, factory: BackendFactory) -> LocalExecutor:
    """The registry's factory (the local executor has no settings of its own)."""
    return LocalExecutor(factory)
