"""Benchmark: the tiny study's evaluation on the real engine through the Ray executor, with one
single-thread worker node vs two, on this machine; and the executor's own cost per shard.

A local cluster is started for the bench (tests/ray_cluster.py: ``ray start`` processes killed
by PID at the end, a private temp dir): first the head alone (1 CPU, one ``quantmatrix`` slot),
then a second node of 1 CPU. Each measurement is one ``evaluate_all`` call on a fresh run
folder with fresh actors (model load and warm-up included, as a study pays them), threads 1.
The local executor's run (threads 1, this process) is the reference the outputs are checked
against: every sample's output must be the same on every executor. The overhead per shard is
the round trip of a shard (hand-out to result, on the driver) minus the backend's own time on
it: on the engine runs, and on the scripted fake backend with one-sample shards (where the
backend's time is nothing, so the figure is the executor's alone).

Run: ``PYTHONPATH=src python bench/bench_ray.py`` (about 2-3 minutes on 2 busy cores)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ray_cluster import Cluster  # noqa: E402

from quantmatrix.config import Study, load_study, parse_study  # noqa: E402
from quantmatrix.models.sources import default_cache, sha256_file  # noqa: E402
from quantmatrix.pipeline.evaluate import EvalLogs, evaluate_all  # noqa: E402
from quantmatrix.pipeline.ladder import build_variants  # noqa: E402
from quantmatrix.pipeline.run import default_backend  # noqa: E402
from quantmatrix.progress import SILENT  # noqa: E402
from quantmatrix.runlog import SAMPLES, VARIANTS, AppendLog, read_rows  # noqa: E402
from quantmatrix.tasks.plan import plan_samples  # noqa: E402

PRESET = ROOT / "src/quantmatrix/presets/tiny.yaml"


def with_executor(study: Study, kind: str, address: str | None, shard: int) -> Study:
    spec = study.executor.model_copy(update={"kind": kind, "address": address,
                                             "shard_samples": shard})  # fmt: skip
    return study.model_copy(update={"executor": spec, "threads": 1})


def evaluate(study: Study, variants: list[Any], out: Path) -> tuple[float, dict[str, str]]:
    """One evaluation call into a fresh folder: its wall time and every sample's output."""
    from quantmatrix.pipeline.executors import ray_executor

    samples = plan_samples(study)
    out.mkdir(parents=True)
    with AppendLog(out / SAMPLES) as log, AppendLog(out / VARIANTS) as vlog:
        started = time.perf_counter()
        outcome = evaluate_all(study, variants, samples, frozenset(), set(),
                               EvalLogs(log, vlog, "bench"), default_backend, SILENT)  # fmt: skip
        wall = time.perf_counter() - started
    assert not outcome.failed_variants, outcome.failed_variants
    ray_executor.disconnect()  # the next measurement starts fresh actors
    rows = read_rows(out / SAMPLES).rows
    return wall, {f"{r['variant']}|{r['task']}|{r['item']}": r["output"] for r in rows}


def last_overhead() -> tuple[int, float]:
    from quantmatrix.pipeline.executors import ray_executor

    return ray_executor.LAST.shards, ray_executor.LAST.overhead_per_shard_s


def fake_overhead(address: str, work: Path) -> tuple[int, float]:
    """One-sample shards on the scripted fake backend: the executor's cost alone."""
    model = {"name": "f", "source": "fake", "backend": "fake", "levels": ["Q8_0", "Q4_K_M"]}
    tasks = [{"kind": "mmlu", "per_subject": None, "n": 40}]
    study = parse_study({"models": [model], "tasks": tasks, "warmup_runs": 0,
                         "executor": {"kind": "ray", "address": address,
                                      "shard_samples": 1}})  # fmt: skip
    variants = build_variants(study, work / "cache", SILENT)[1]
    evaluate(study, variants, work / "fake")
    return last_overhead()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard", type=int, default=4, help="samples per shard")
    args = parser.parse_args()
    study = load_study(PRESET)
    cache = default_cache()
    variants = build_variants(study, cache, SILENT)[1]
    variants = [(s, v.__class__(**{**v.__dict__, "sha256": sha256_file(v.path, cache)}))
                for s, v in variants]  # fmt: skip
    n = len(plan_samples(study)) * len(variants)
    with tempfile.TemporaryDirectory(prefix="qm-bench-ray-") as tmp:
        work = Path(tmp)
        local_wall, local_out = evaluate(with_executor(study, "local", None, args.shard),
                                         variants, work / "local")  # fmt: skip
        cluster = Cluster(work / "ray")
        try:
            cluster.start_head()
            ray_study = with_executor(study, "ray", cluster.address, args.shard)
            one_wall, one_out = evaluate(ray_study, variants, work / "one")
            one_shards, one_over = last_overhead()
            cluster.add_node("second")
            two_wall, two_out = evaluate(ray_study, variants, work / "two")
            two_shards, two_over = last_overhead()
            fake_shards, fake_over = fake_overhead(cluster.address, work)
        finally:
            from quantmatrix.pipeline.executors import ray_executor

            ray_executor.disconnect()
            cluster.close()
    same = one_out == local_out and two_out == local_out
    print(f"tiny study evaluation, real engine, {n} samples, threads 1, shards of {args.shard}")
    print(f"  local executor (this process):  {local_wall:7.1f} s")
    print(f"  ray, 1 worker node:             {one_wall:7.1f} s   overhead/shard "
          f"{one_over * 1000:6.1f} ms over {one_shards} shards")  # fmt: skip
    print(f"  ray, 2 worker nodes:            {two_wall:7.1f} s   overhead/shard "
          f"{two_over * 1000:6.1f} ms over {two_shards} shards")  # fmt: skip
    print(f"  wall-time ratio 1 worker / 2 workers: {one_wall / two_wall:.2f}")
    print(f"  ray 1 worker / local: {one_wall / local_wall:.2f}")
    print(f"  outputs identical on all three: {same}")
    print(f"executor overhead per shard (fake backend, 1-sample shards, {fake_shards} shards): "
          f"{fake_over * 1000:.1f} ms")  # fmt: skip
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
