"""Where the kill campaign kills (tests/kill_campaign.py): the uninterrupted reference run as
seen from outside (:class:`Timeline`), seeded kill points spread over its phases
(:func:`plan_kills`), and the phase a kill hit (:func:`phase_hit`).

A point is a :class:`~tests.kill_watch.Trigger` that is met again after a resume (the n-th row
of a log file, a ladder level's temporary file written, a progress line) plus a seeded delay no
longer than the reference took for that step, so it lands in its phase on any machine.
"""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass
from typing import Any

from quantmatrix.runlog import KLD, SAMPLES, SCORES, TIMING
from tests.kill_watch import Snapshot, Trigger

STARTUP, LADDER, EVAL, ADAPTIVE = "startup", "ladder", "evaluation", "adaptive round 2+"
TIMING_PHASE, KL, SCORING, REPORT = "timing", "KL", "scoring", "report"
PHASES = (STARTUP, LADDER, EVAL, ADAPTIVE, TIMING_PHASE, KL, SCORING, REPORT)
RAY = "ray driver"
# kills per phase in a 24-kill campaign; other sizes are scaled from these
WEIGHTS = {STARTUP: 1, LADDER: 3, EVAL: 4, ADAPTIVE: 3, RAY: 3, TIMING_PHASE: 3, KL: 3,
           SCORING: 2, REPORT: 2}  # fmt: skip


@dataclass(frozen=True)
class KillPoint:
    aim: str  # the phase it is meant to hit
    trigger: Trigger
    order: float  # its place on the reference's timeline (seconds)
    executor: str = "local"


@dataclass(frozen=True)
class Timeline:
    """The reference run as seen from outside."""

    lines: list[tuple[float, str]]
    snapshots: list[Snapshot]
    wall_s: float

    def total(self, name: str) -> int:
        return self.snapshots[-1].rows[name]

    def when_rows(self, name: str, count: int) -> float:
        return next(s.t for s in self.snapshots if s.rows[name] >= count)

    def when_file(self, name: str) -> float | None:
        return next((s.t for s in self.snapshots if name in s.ladder), None)

    def when_line(self, needle: str) -> float | None:
        return next((t for t, text in self.lines if needle in text), None)

    def gap(self, name: str) -> float:
        """The median time between two rows of a file (0.5 s when it has too few)."""
        pairs = itertools.pairwise(self.snapshots)
        times = [b.t for a, b in pairs if b.rows[name] > a.rows[name]]
        if len(times) < 3:
            return 0.5
        return statistics.median(b - a for a, b in itertools.pairwise(times))

    def builds(self) -> list[tuple[str, float, float]]:
        """(level, start, seconds) of each ladder file built: its temporary file's life."""
        out = []
        for name in sorted({n for s in self.snapshots for n in s.ladder if n.endswith(".partial")}):
            start = self.when_file(name)
            done = self.when_file(name.removesuffix(".partial") + ".gguf")
            if start is not None and done is not None:
                out.append((name, start, max(done - start, 0.05)))
        return sorted(out, key=lambda b: b[1])

    def round_starts(self) -> list[int]:
        """Sample rows logged when each evaluation round began (its first ``eval`` line)."""
        seen: set[str] = set()
        starts: list[int] = []
        for t, text in self.lines:
            if not text.startswith("[phase] eval "):
                continue
            if text in seen or not starts:
                seen = set()
                starts.append(self.rows_at(SAMPLES, t))
            seen.add(text)
        return starts

    def rows_at(self, name: str, t: float) -> int:
        return max((s.rows[name] for s in self.snapshots if s.t <= t), default=0)


def quotas(kills: int, ray: bool) -> dict[str, int]:
    """Kills per phase: the 24-kill weights scaled (largest remainders), one each at least."""
    weights = dict(WEIGHTS)
    if not ray:
        weights[EVAL] += weights.pop(RAY)
    total = sum(weights.values())
    exact = {k: kills * w / total for k, w in weights.items()}
    out = {k: max(1, int(v)) for k, v in exact.items()}
    order = sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)
    i = 0
    while sum(out.values()) < kills:
        out[order[i % len(order)]] += 1
        i += 1
    return out


def plan_kills(ref: Timeline, counts: dict[str, int], seed: int) -> list[KillPoint]:
    """Seeded points of each phase on the reference's timeline, in timeline order."""
    rng = random.Random(seed)
    points: list[KillPoint] = []
    for aim, n in counts.items():
        points += [p for _ in range(n) if (p := _point(ref, aim, rng)) is not None]
    return sorted(points, key=lambda p: p.order)


def _rows_point(ref: Timeline, aim: str, name: str, low: int, high: int,
                rng: random.Random, executor: str = "local") -> KillPoint | None:  # fmt: skip
    if high <= low:
        return None
    count = rng.randrange(low, high)
    delay = rng.uniform(0, ref.gap(name))
    return KillPoint(aim, Trigger("rows", name, count, delay_s=delay),
                     ref.when_rows(name, count) + delay, executor)  # fmt: skip


def _line_point(ref: Timeline, aim: str, needle: str, until: float | None,
                rng: random.Random, needs: str = "") -> KillPoint | None:  # fmt: skip
    start = ref.when_line(needle)
    if start is None:
        return None
    count = ref.total(needs) if needs else 0
    if needs:  # armed once the line was seen and the file holds all its rows
        start = max(start, ref.when_rows(needs, count))
    span = max((until if until is not None else ref.wall_s) - start, 0.1)
    delay = rng.uniform(0.05, 0.75) * span
    trigger = Trigger("line", needle, count, needs, delay)
    return KillPoint(aim, trigger, start + delay)


def _point(ref: Timeline, aim: str, rng: random.Random) -> KillPoint | None:
    samples = ref.total(SAMPLES)
    rounds = ref.round_starts()
    second = rounds[1] if len(rounds) > 1 else samples
    if aim == STARTUP:
        first = ref.lines[0][0] if ref.lines else 1.0
        delay = rng.uniform(0.2, 0.9) * first
        return KillPoint(aim, Trigger("time", delay_s=delay), delay)
    if aim == LADDER:
        builds = ref.builds()
        if not builds:
            return None
        name, start, took = rng.choice(builds)
        delay = rng.uniform(0.1, 0.9) * took
        return KillPoint(aim, Trigger("file", name, delay_s=delay), start + delay)
    if aim == EVAL:
        return _rows_point(ref, aim, SAMPLES, 1, max(second, 2), rng)
    if aim == ADAPTIVE:
        return _rows_point(ref, aim, SAMPLES, second, samples, rng)
    if aim == RAY:
        return _rows_point(ref, aim, SAMPLES, 1, samples, rng, executor="ray")
    if aim == TIMING_PHASE:
        if rng.random() < 0.25:  # while the phase opens its backend and warms it up
            return _line_point(ref, aim, "[phase] timing", ref.when_rows(TIMING, 1), rng)
        return _rows_point(ref, aim, TIMING, 1, ref.total(TIMING), rng)
    if aim == KL:
        if rng.random() < 0.34:  # while the baseline's logits are computed and stored
            return _line_point(ref, aim, "baseline logits", ref.when_line("token KL"), rng)
        return _rows_point(ref, aim, KLD, 1, ref.total(KLD), rng)
    if aim == SCORING:  # from the end of KL (the scorer loads) to the report
        return _line_point(ref, aim, "token KL", ref.when_line("[phase] report"), rng, KLD)
    if aim == REPORT:
        return _line_point(ref, aim, "[phase] report", None, rng)
    raise ValueError(f"unknown phase {aim!r}")


def phase_hit(lines: list[tuple[float, str]], state: Snapshot, ref: Timeline) -> str:
    """The phase a kill hit: the attempt's last progress line, with the log's state."""
    last = lines[-1][1] if lines else ""
    if not last:
        return STARTUP
    if last.startswith("[phase] ladder"):
        return LADDER
    if last.startswith("[phase] eval"):
        rounds = ref.round_starts()
        late = len(rounds) > 1 and state.rows[SAMPLES] >= rounds[1]
        return ADAPTIVE if late else EVAL
    if last.startswith("[phase] timing"):
        return TIMING_PHASE
    if last.startswith(("baseline logits", "token KL")):
        return SCORING if state.rows[KLD] >= ref.total(KLD) and ref.total(SCORES) else KL
    if last.startswith("[phase] score"):
        return SCORING
    if last.startswith("[phase] report"):
        return REPORT
    return last


def describe(points: list[KillPoint]) -> list[dict[str, Any]]:
    return [{"aim": p.aim, "executor": p.executor, "trigger": p.trigger.kind,
             "target": p.trigger.target, "count": p.trigger.count,
             "delay_s": round(p.trigger.delay_s, 3)} for p in points]  # fmt: skip
