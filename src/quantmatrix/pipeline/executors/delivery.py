"""The driver's side: the one writer of ``samples.jsonl`` and ``variants.jsonl``.

Executors hand every row they get back to :class:`Delivery`; a row whose key is already in the
log (from an earlier session, or from a shard delivered twice after a lost worker was thought
dead) is dropped, so delivery is idempotent and every sample is written exactly once. Threads
of the local executor deliver through one lock. When a variant's shards are all in,
:meth:`Delivery.finish` writes its session row from the shards' times and the sessions' stats.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from quantmatrix.pipeline.executors.base import Evaluated, SessionStats, ShardResult, VariantWork
from quantmatrix.progress import Reporter, console
from quantmatrix.runlog import AppendLog, SampleRow, VariantRow
from quantmatrix.runlog.rows import Key


@dataclass(frozen=True)
class EvalLogs:
    samples: AppendLog
    variants: AppendLog
    session: str


@dataclass
class _Tally:
    written: int = 0
    eval_wall_s: float = 0.0
    native_s: float = 0.0
    shards: set[int] = field(default_factory=set)
    sessions: list[SessionStats] = field(default_factory=list)


class Delivery:
    def __init__(
        self,
        logs: EvalLogs,
        done: frozenset[Key],
        progress: Reporter,
        outcome: Evaluated,
        warmup_runs: int,
    ) -> None:
        self.logs, self.progress, self.outcome = logs, progress, outcome
        self.warmup_runs = warmup_runs
        self._written: set[Key] = set(done)
        self._tallies: dict[str, _Tally] = {}
        self._lock = threading.Lock()

    def _tally(self, variant: str) -> _Tally:
        return self._tallies.setdefault(variant, _Tally())

    def row(self, row: SampleRow) -> bool:
        """Write ``row`` unless its key is logged already; True if it was written now."""
        with self._lock:
            if row.key in self._written:
                return False
            self.logs.samples.append(row)
            self._written.add(row.key)
            self._tally(row.variant).written += 1
            self.outcome.evaluated += 1
            self.progress.advance()
            return True

    def shard(self, result: ShardResult) -> int:
        """Write a shard's new rows and count its time once; the rows written now."""
        new = sum(self.row(r) for r in result.rows)
        with self._lock:
            tally = self._tally(result.variant)
            if result.number not in tally.shards:
                tally.shards.add(result.number)
                tally.eval_wall_s += result.eval_wall_s
                tally.native_s += result.native_s
        return new

    def session(self, variant: str, stats: SessionStats) -> None:
        """One loaded backend's stats for the variant's row (several hosts: several)."""
        with self._lock:
            self._tally(variant).sessions.append(stats)

    def fail(self, variant: str, message: str) -> None:
        with self._lock:
            console.print(f"[red]{variant}: {message}[/red]", highlight=False)
            if variant not in self.outcome.failed_variants:
                self.outcome.failed_variants.append(variant)

    def finish(self, work: VariantWork) -> None:
        """The variant's session row, once all its shards are in (none if it failed)."""
        with self._lock:
            tally = self._tallies.pop(work.id, _Tally())
            if work.id in self.outcome.failed_variants or not tally.sessions:
                return
            self.logs.variants.append(variant_row(work, tally, self.logs.session, self.warmup_runs))


def variant_row(work: VariantWork, tally: _Tally, session: str, warmup_runs: int) -> VariantRow:
    """The session row: times summed over shards; the first session's backend facts, the
    highest memory peak; with several hosts, ``backend.hosts`` names them."""
    first = tally.sessions[0]
    backend = dict(first.backend)
    hosts = sorted({s.where for s in tally.sessions})
    if hosts != ["local"]:
        backend["hosts"] = hosts
    readings = [s.memory for s in tally.sessions if s.memory is not None]
    memory = max(readings, key=lambda m: int(m.get("peak_bytes", 0)), default=None)
    v = work.variant
    return VariantRow(
        variant=v.id,
        model=v.model,
        level=v.label,
        file=v.info.as_dict() if v.info else None,
        source_sha256=v.source_sha256,
        source_type=v.source_type,
        reconstructed=v.reconstructed,
        **v.log_fields(),
        backend=backend,
        memory=memory,
        warmup_runs=warmup_runs,
        warmup_s=first.warmup_s,
        session_samples=tally.written,
        session_eval_wall_s=tally.eval_wall_s,
        session_native_s=tally.native_s,
        session=session,
    )
