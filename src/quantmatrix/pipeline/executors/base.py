"""The executor interface: what the evaluation phase hands out, and what comes back.

``pipeline/evaluate.py`` plans one :class:`VariantWork` per variant (its pending batch groups,
in plan order) and cuts it into :class:`Shard` units, each a run of whole batch groups, so
every executor decodes the same batch shapes and gives the same outputs. An executor answers
shards wherever it likes (this process, threads per server, Ray actors on other hosts) and
hands each shard's :class:`ShardResult` to the driver's :class:`Delivery`, the one writer of
the run log (``delivery.py``). A unit is (variant, shard); its rows carry their keys, so a
shard delivered twice writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from quantmatrix.backends.base import Backend
from quantmatrix.config import ModelSpec, Study
from quantmatrix.models.ladder import Variant
from quantmatrix.runlog import SampleRow
from quantmatrix.tasks.base import Sample

if TYPE_CHECKING:
    from quantmatrix.pipeline.executors.delivery import Delivery

BackendFactory = Callable[[Variant, ModelSpec, Study], Backend]


@dataclass(frozen=True)
class Shard:
    """Whole batch groups of one variant's pending work: (plan index, sample), plan order."""

    variant: str  # Variant.id
    number: int  # the shard's place in the variant's work, from 0
    items: tuple[tuple[int, Sample], ...]


@dataclass(frozen=True)
class VariantWork:
    """One variant's share of an evaluation call: what to load, what to ask."""

    spec: ModelSpec
    variant: Variant
    shards: tuple[Shard, ...]
    todo: int  # samples without a row yet (a partly logged group asks more, writes only these)

    @property
    def id(self) -> str:
        return self.variant.id


@dataclass(frozen=True)
class ShardResult:
    """A shard's rows (every item asked, logged ones included: the driver drops those) and the
    time the backend took on it."""

    variant: str
    number: int
    rows: tuple[SampleRow, ...]
    eval_wall_s: float
    native_s: float


@dataclass(frozen=True)
class SessionStats:
    """What one loaded backend measured over its life: goes into the variant's row."""

    backend: dict[str, Any]
    memory: dict[str, Any] | None
    warmup_s: float
    where: str = "local"  # the host (Ray node) it ran on


@dataclass
class Evaluated:
    evaluated: int = 0
    skipped: int = 0
    failed_variants: list[str] = field(default_factory=list)


class Executor(Protocol):
    """Answers every shard of ``works`` and delivers each result; a failed variant is named
    to ``delivery.fail`` and the others go on."""

    def run(self, study: Study, works: Sequence[VariantWork], delivery: Delivery) -> None: ...


def cut_shards(
    variant: str, asked: Sequence[tuple[int, Sample]], group_size: int, per_shard: int
) -> tuple[Shard, ...]:
    """``asked`` cut into runs of whole batch groups (``index // group_size``) holding at
    least ``per_shard`` samples each (the last one fewer)."""
    size = max(1, group_size)
    shards: list[Shard] = []
    run: list[tuple[int, Sample]] = []
    for index, sample in asked:
        if len(run) >= per_shard and run[-1][0] // size != index // size:
            shards.append(Shard(variant, len(shards), tuple(run)))
            run = []
        run.append((index, sample))
    if run:
        shards.append(Shard(variant, len(shards), tuple(run)))
    return tuple(shards)
