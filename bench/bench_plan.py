"""How close is ``quantmatrix plan``'s ETA? Plan a study, then run it, in one process.

The plan is made first (calibrating what the cache does not hold yet), then the study runs into
a fresh folder with a reporter that notes when each phase starts; the table gives each phase's
predicted and measured time and their ratio. Both figures are taken on the same machine in the
same minutes, so the machine's load weighs on both (the load average is printed).

    python bench/bench_plan.py                         # the small two-model study below
    python bench/bench_plan.py examples/demo.yaml      # a whole study (as long as running it)
    python bench/bench_plan.py --threads 1             # on a busy machine
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from quantmatrix.config import Study, load_study, parse_study
from quantmatrix.models.sources import default_cache
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.plan import GatherOptions, gather, make_plan
from quantmatrix.plan.render import duration
from quantmatrix.tasks.plan import plan_samples

SMALL = {
    "name": "bench-plan",
    "models": [
        {
            "name": "qwen-0.5b",
            "source": "qwen2.5-coder-0.5b-instruct",
            "levels": ["Q8_0", "Q4_K_M"],
        },
        {"name": "qwen-1.5b", "source": "qwen2.5-coder-1.5b-instruct", "levels": ["Q8_0", "Q2_K"]},
    ],
    "tasks": [
        {"kind": "mmlu", "per_subject": None, "n": 12},
        {"kind": "arc_challenge", "n": 8},
        {"kind": "generation", "per_task": 1, "max_new_tokens": 64},
    ],
    "divergence": {"corpus_tokens": 256},
    "timing": {"multiple_choice": 4, "generation": 1},
    "warmup_runs": 1,
}
PHASES = ("ladder", "evaluation", "timing", "KL", "scoring")


class Clock:
    """A progress reporter that notes the first moment each phase shows up."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}

    def _mark(self, phase: str) -> None:
        self.starts.setdefault(phase, time.perf_counter())

    def phase(self, name: str, total: int) -> None:
        for prefix, phase in (("ladder", "ladder"), ("eval", "evaluation"),
                              ("timing", "timing"), ("score", "scoring")):  # fmt: skip
            if name.startswith(prefix):
                self._mark(phase)

    def advance(self, units: int = 1) -> None:
        pass

    def say(self, line: str) -> None:
        if line.startswith(("baseline logits", "token KL")):
            self._mark("KL")

    def durations(self, end: float) -> dict[str, float]:
        seen = sorted((t, p) for p, t in self.starts.items())
        stops = [t for t, _ in seen[1:]] + [end]
        return {p: stop - t for (t, p), stop in zip(seen, stops, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", type=Path, help="default: a small two-model study")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None, help="default: the study's")
    args = parser.parse_args()
    study: Study = load_study(args.study) if args.study else parse_study(SMALL, "bench_plan")
    if args.threads:  # one thread: on a busy machine no thread spins waiting for another
        study = study.model_copy(update={"threads": args.threads})
    cache = args.cache or default_cache()
    inputs = gather(study, GatherOptions(cache), say=lambda line: print(line, file=sys.stderr))
    plan = make_plan(study, plan_samples(study), inputs)
    predicted = {p.name: p.seconds for p in plan.phases}
    load_before = os.getloadavg()[0]
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        started = time.perf_counter()
        run_study(study, RunOptions(out=Path(tmp) / "run", cache=cache), progress=clock)
        end = time.perf_counter()
    measured = clock.durations(end)
    print(f"study {study.name}; load average {load_before:.1f} before the run, "
          f"{os.getloadavg()[0]:.1f} after")  # fmt: skip
    print(f"{'phase':<11} {'predicted':>22} {'measured':>12} {'ratio':>6}")
    for name in PHASES:
        got = measured.get(name, 0.0)
        r = predicted[name]
        high = r.high
        ratio = f"{high / got:.2f}" if high is not None and got > 0.5 else "-"
        when = "unknown" if high is None else f"{duration(r.low)}..{duration(high)}"
        print(f"{name:<11} {when:>22} {duration(got):>12} {ratio:>6}")
    total = plan.total
    print(f"{'total':<11} {duration(total.low)}..{duration(total.high)} vs "
          f"{duration(end - started)}")  # fmt: skip


if __name__ == "__main__":
    main()
