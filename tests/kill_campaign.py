"""The kill campaign: a study killed with SIGKILL at seeded points of every phase, resumed each
time, and compared with an uninterrupted run (bench/campaign_kill.py runs it in full,
tests/test_campaign_kill.py a reduced one).

1. The reference: the study run once without a kill, into a fresh cache, its progress lines
   and the growth of every log file and ladder file recorded (:class:`Timeline`).
2. The plan: for each phase, seeded points on that timeline (:func:`plan_kills`), each a
   :class:`~tests.kill_watch.Trigger` that is met again after a resume: the n-th row of a log
   file, a ladder level's temporary file, a progress line, plus a seeded delay no longer than
   the reference's time for that step. Times are this machine's own, measured in step 1.
3. The campaign, in a second fresh cache and run folder: attempt after attempt, each killed at
   the next point (its whole process group), the run folder checked after each kill
   (``verify``'s checks: a torn last line is allowed, a duplicate or a bad row is not); some
   evaluation attempts run on a Ray cluster, killing its driver; then a last run to the end.
4. The verdict (:class:`Verdict`): every log file's rows equal to the reference's but for
   timing (tests/log_compare.py), ``quantmatrix verify`` clean, no temporary file left in the
   run folder or the cache, ``quantmatrix report`` rewriting byte-identical report files (none
   half-written), ``analysis.json`` equal but for timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from quantmatrix.verify import check_run
from tests import log_compare
from tests.kill_plan import (
    ADAPTIVE,
    EVAL,
    KL,
    LADDER,
    PHASES,
    RAY,
    REPORT,
    SCORING,
    STARTUP,
    TIMING_PHASE,
    KillPoint,
    Timeline,
    describe,
    phase_hit,
    plan_kills,
    quotas,
)  # fmt: skip
from tests.kill_watch import Attempt, Watch

__all__ = [
    "ADAPTIVE", "EVAL", "KL", "LADDER", "PHASES", "RAY", "REPORT", "SCORING", "STARTUP",
    "TIMING_PHASE", "KillPoint", "Setup", "Timeline", "Verdict", "campaign", "describe",
    "plan_kills", "quotas", "reference_run", "run_campaign",
]  # fmt: skip
# what counts as a temporary file left behind: names written before a rename, and locks
TEMP_PATTERNS = ("*.tmp", "*.partial", "*.partial.*", "*-tmp", "*.lock")


def temp_files(*folders: Path) -> list[Path]:
    """Temporary files (:data:`TEMP_PATTERNS`) anywhere under the folders."""
    found: set[Path] = set()
    for folder in folders:
        for pattern in TEMP_PATTERNS:
            found |= set(folder.rglob(pattern))
    return sorted(found)


PNG_END = b"IEND\xaeB`\x82"


def half_written(out: Path) -> list[str]:
    """Report files a kill left incomplete: analysis.json that is not JSON, report.html
    without its end, a plot without its PNG end (report.md has no end marker to check)."""
    found = []
    analysis = out / "analysis.json"
    if analysis.exists():
        try:
            json.loads(analysis.read_bytes())
        except ValueError:
            found.append(analysis.name)
    html = out / "report.html"
    if html.exists() and not html.read_bytes().rstrip().endswith(b"</html>"):
        found.append(html.name)
    found += [f"plots/{p.name}" for p in sorted((out / "plots").glob("*.png"))
              if not p.read_bytes().endswith(PNG_END)]  # fmt: skip
    return found


@dataclass
class Kill:
    point: KillPoint
    hit: str  # the phase it hit
    rows: dict[str, int]
    temp_left: list[str]  # temporary files present right after the kill
    problems: list[str]  # verify's problems right after the kill (must be none)
    torn_reports: list[str] = field(default_factory=list)  # half-written report files

    @property
    def on_aim(self) -> bool:
        """It hit the phase it aimed at (a Ray driver's kill: its evaluation)."""
        aim = self.point.aim
        return self.hit == aim or (aim == RAY and self.hit in (EVAL, ADAPTIVE))


@dataclass
class Verdict:
    kills: list[Kill] = field(default_factory=list)
    missed: list[KillPoint] = field(default_factory=list)  # the run ended before the point
    resumes: int = 0
    comparisons: list[log_compare.FileComparison] = field(default_factory=list)
    verify_rc: int | None = None
    verify_out: str = ""
    stray: list[str] = field(default_factory=list)
    reports_rewritten_equal: bool = False
    analysis_equal: bool = False
    final_rc: int | None = None
    wall_s: float = 0.0
    reference_s: float = 0.0

    @property
    def mismatches(self) -> int:
        c = self.comparisons
        return sum(len(x.lost) + len(x.extra) + len(x.duplicated) + len(x.mismatched) for x in c)

    @property
    def ok(self) -> bool:
        clean = all(not k.problems for k in self.kills) and self.final_rc == 0
        checks = (self.mismatches == 0, self.verify_rc == 0, not self.stray)
        return clean and all(checks) and self.reports_rewritten_equal and self.analysis_equal

    def per_phase(self) -> dict[str, int]:
        hits = Counter(k.hit for k in self.kills)
        return {p: hits[p] for p in (*PHASES, *sorted(set(hits) - set(PHASES)))}

    def summary(self) -> list[str]:
        ray = sum(k.point.executor == "ray" for k in self.kills)
        out = [f"kills: {len(self.kills)} ({ray} of the Ray driver), missed points: "
               f"{len(self.missed)}, resumes: {self.resumes}"]  # fmt: skip
        out += [f"  {phase}: {n}" for phase, n in self.per_phase().items()]
        aims = Counter((k.point.aim, k.hit) for k in self.kills if not k.on_aim)
        if aims:
            out.append("  aimed elsewhere: " + ", ".join(f"{a}->{h} {n}" for (a, h), n in
                                                          sorted(aims.items())))  # fmt: skip
        left = sum(bool(k.temp_left) for k in self.kills)
        out.append(f"temporary files right after a kill: {left} kills left some (replaced by "
                   "the next run)")  # fmt: skip
        out.append(f"verify problems right after kills: {sum(len(k.problems) for k in self.kills)}")
        torn = [f for k in self.kills for f in k.torn_reports]
        out.append(f"half-written report files right after kills: {len(torn)} {torn[:4]} "
                   "(rewritten whole by the next run)")  # fmt: skip
        out += log_compare.lines(self.comparisons)
        compared = sum(c.compared for c in self.comparisons)
        out.append(f"rows compared: {compared}, mismatches: {self.mismatches}")
        out.append(f"quantmatrix verify: exit {self.verify_rc}; stray temporary files: "
                   f"{len(self.stray)} {self.stray[:5]}")  # fmt: skip
        out.append(f"report files rewritten byte-identical: {self.reports_rewritten_equal}; "
                   f"analysis.json equal but for timing: {self.analysis_equal}")  # fmt: skip
        out.append(f"wall: reference run {self.reference_s:.0f} s, campaign {self.wall_s:.0f} s")
        return out


@dataclass
class Setup:
    """How to run the study: the command's start (``python -m quantmatrix`` or a test entry),
    its environment, the work folder, and a Ray address for the driver's attempts."""

    study: Path
    work: Path
    entry: list[str] = field(default_factory=lambda: [sys.executable, "-m", "quantmatrix"])
    env: dict[str, str] = field(default_factory=dict)
    ray_address: str | None = None
    timeout_s: float = 3600.0

    def command(self, out: Path, cache: Path, executor: str = "local") -> list[str]:
        cmd = [*self.entry, "run", str(self.study), "--out", str(out), "--cache", str(cache),
               "--progress", "lines"]  # fmt: skip
        if executor == "ray" and self.ray_address:
            cmd += ["--executor", "ray", "--address", self.ray_address]
        return cmd

    def watch(self, out: Path, cache: Path, executor: str = "local") -> Watch:
        return Watch(self.command(out, cache, executor), self.env, out, cache)


def reference_run(setup: Setup) -> Timeline:
    out, cache = setup.work / "reference", setup.work / "reference-cache"
    attempt = setup.watch(out, cache).run(None, setup.timeout_s, record=True)
    if attempt.rc != 0:
        raise RuntimeError(f"the reference run failed ({attempt.rc}): {attempt.stderr_tail}")
    return Timeline(attempt.lines, attempt.snapshots, attempt.wall_s)


def run_campaign(
    setup: Setup, ref: Timeline, points: list[KillPoint], say: Callable[[str], None] | None = None
) -> Verdict:
    """Each point in turn: an attempt killed there (a point the run ended before is missed),
    then a last run to the end, then the verdict; ``say`` hears one line per attempt."""
    out, cache = setup.work / "campaign", setup.work / "campaign-cache"
    verdict = Verdict(reference_s=ref.wall_s)
    started = time.monotonic()
    for number, point in enumerate(points, start=1):
        attempt = setup.watch(out, cache, point.executor).run(point.trigger, setup.timeout_s)
        if not attempt.killed:
            verdict.missed.append(point)
            if attempt.rc != 0:
                raise RuntimeError(f"an attempt failed ({attempt.rc}): {attempt.stderr_tail}")
            continue
        kill = _after_kill(point, attempt, out, cache, ref)
        verdict.kills.append(kill)
        verdict.resumes += 1
        if say is not None:
            say(f"kill {number}/{len(points)} ({point.executor}): aimed at {point.aim}, hit "
                f"{kill.hit} after {attempt.wall_s:.1f} s; rows {kill.rows}; temporary "
                f"files {kill.temp_left}; half-written reports {kill.torn_reports}; verify "
                f"problems {len(kill.problems)}")  # fmt: skip
    final = setup.watch(out, cache).run(None, setup.timeout_s)
    verdict.final_rc = final.rc
    verdict.wall_s = time.monotonic() - started
    _judge(setup, verdict, out, cache)
    return verdict


def _after_kill(point: KillPoint, attempt: Attempt, out: Path, cache: Path, ref: Timeline) -> Kill:
    assert attempt.killed_at is not None
    problems = check_run(out).problems if (out / "manifest.json").exists() else []
    left = [str(p.relative_to(out.parent)) for p in temp_files(out, cache)]
    hit = phase_hit(attempt.lines, attempt.killed_at, ref)
    return Kill(point, hit, dict(attempt.killed_at.rows), left, problems, half_written(out))


REPORT_FILES = ("report.md", "report.html", "analysis.json")


def _judge(setup: Setup, verdict: Verdict, out: Path, cache: Path) -> None:
    reference = setup.work / "reference"
    verdict.comparisons = log_compare.compare_runs(reference, out)
    done = _cli(setup, "verify", str(out))
    verdict.verify_rc, verdict.verify_out = done.returncode, done.stdout[-2000:]
    verdict.stray = [str(p) for p in temp_files(out, cache)]
    before = _report_bytes(out)
    _cli(setup, "report", str(out))
    verdict.reports_rewritten_equal = bool(before) and before == _report_bytes(out)
    verdict.analysis_equal = log_compare.analysis_quality(reference) == (
        log_compare.analysis_quality(out)
    )


def _report_bytes(out: Path) -> dict[str, bytes]:
    files = [out / n for n in REPORT_FILES] + sorted((out / "plots").glob("*"))
    return {p.name: p.read_bytes() for p in files if p.is_file()}


def _cli(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*setup.entry, *args], env=setup.env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


def campaign(setup: Setup, kills: int, seed: int) -> tuple[Verdict, list[KillPoint]]:
    """The reference, the plan, the campaign and its verdict."""
    ref = reference_run(setup)
    points = plan_kills(ref, quotas(kills, setup.ray_address is not None), seed)
    return run_campaign(setup, ref, points), points
