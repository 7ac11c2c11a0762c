"""The tiny study through the Ray executor on a real local cluster (tests/ray_cluster.py): a
head and a second node of one CPU each, started and stopped by this module by PID.

Killing the second node mid-run loses nothing: its shard is answered again on the head, every
sample is written exactly once, and the analysis equals the local executor's but for timing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from quantmatrix.cli import app
from quantmatrix.config import Study, parse_study
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.report.render import write_report
from quantmatrix.runlog import SAMPLES, VARIANTS, read_rows
from quantmatrix.verify import verify_run
from tests import slow_backend
from tests.ray_cluster import Cluster, Node

pytestmark = pytest.mark.slow

# the wall-time fields: the only ones allowed to differ between executors
VOLATILE = {"eval_wall_s", "harness_overhead"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from quantmatrix.pipeline.executors import ray_executor

    ray_cluster = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        ray_cluster.start_head()
        ray_cluster.add_node("label")
        yield ray_cluster
    finally:
        ray_executor.disconnect()
        ray_cluster.close()


def tiny_fake(address: str | None, executor: str = "ray") -> Study:
    """The tiny preset's tasks on the scripted fake backend, small shards."""
    model = {"name": "tiny", "source": "fake", "backend": "fake", "levels": ["Q8_0", "Q4_K_M"]}
    tasks = [{"kind": "mmlu", "per_subject": None, "n": 8}, {"kind": "arc_challenge", "n": 8}]
    spec = {"kind": executor, "address": address, "shard_samples": 2}
    return parse_study({"name": "tiny", "models": [model], "tasks": tasks,
                        "warmup_runs": 1, "executor": spec})  # fmt: skip


def stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stripped(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stripped(v) for v in value]
    return value


def analysis_of(out: Path) -> Any:
    write_report(out)
    return stripped(json.loads((out / "analysis.json").read_text()))


def quality_of(out: Path) -> Any:
    """The analysis without what the engine's speed and memory readings change."""
    full = analysis_of(out)
    speed = ("timing", "single_stream", "memory", "overhead")
    variants = [{k: v for k, v in row.items() if k not in speed} for row in full["variants"]]
    return variants, {k: v for k, v in full["statistics"].items() if k != "timing"}


def sample_keys(out: Path) -> list[tuple[str, str, str]]:
    return [(r["variant"], r["task"], r["item"]) for r in read_rows(out / SAMPLES).rows]


def kill_when_busy(node: Node, samples: Path, seen: dict[str, int]) -> threading.Thread:
    """Kill ``node`` once both variants have rows in the log (each runs on its own node)."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lines = samples.read_text().splitlines() if samples.exists() else []
            variants = {json.loads(line)["variant"] for line in lines}
            if len(variants) == 2 and len(lines) >= 6:
                seen["rows_at_kill"] = len(lines)
                node.kill()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_actors_are_kept_between_calls(cluster: Cluster, tmp_path: Path) -> None:
    from quantmatrix.pipeline.executors import ray_executor

    study = tiny_fake(cluster.address)
    first = run_study(study, RunOptions(tmp_path / "a", tmp_path / "cache"))
    assert first.evaluated == 32 and ray_executor.LAST.shards == 16
    assert ray_executor.LAST.started >= 2 and ray_executor.LAST.reused == 0
    again = run_study(study, RunOptions(tmp_path / "b", tmp_path / "cache"))
    assert again.evaluated == 32 and not again.failed_variants
    assert ray_executor.LAST.reused >= 1  # a model loaded in the first call answered again
    assert len(set(sample_keys(tmp_path / "b"))) == 32


def test_a_killed_driver_resumes_from_the_log(cluster: Cluster, tmp_path: Path) -> None:
    """What a driver killed after ten rows leaves (its log cut there, a torn last line),
    rerun on the cluster: only the rest is asked, nothing is written twice."""
    study, out = tiny_fake(cluster.address), tmp_path / "run"
    run_study(study, RunOptions(out, tmp_path / "cache"))
    lines = (out / SAMPLES).read_text().splitlines(keepends=True)
    (out / SAMPLES).write_text("".join(lines[:10]) + lines[10][:40])
    (out / VARIANTS).unlink()
    again = run_study(study, RunOptions(out, tmp_path / "cache"))
    assert again.evaluated == 22 and again.skipped == 10 and not again.failed_variants
    keys = sample_keys(out)
    assert len(keys) == len(set(keys)) == 32 and verify_run(out) == ([], [])


def test_doctor_lists_the_nodes_and_the_cli_runs_on_the_cluster(
    cluster: Cluster, tmp_path: Path
) -> None:
    from quantmatrix.doctor import cluster_facts, cluster_lines

    facts = cluster_facts(cluster.address)
    assert facts is not None and len(facts["nodes"]) == 2
    labelled = [n for n in facts["nodes"] if "label" in n["resources"]]
    assert len(labelled) == 1 and labelled[0]["resources"]["CPU"] == 1.0
    lines = cluster_lines(facts)
    assert "2 node(s), 2 offering the 'quantmatrix' slot" in lines[0] and len(lines) == 3
    study = tmp_path / "study.yaml"
    data = tiny_fake(None, "local").model_dump(mode="json")
    study.write_text(yaml.safe_dump({**data, "executor": {"shard_samples": 4}}))
    args = ["run", str(study), "--out", str(tmp_path / "run"), "--quiet",
            "--executor", "ray", "--address", cluster.address]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "evaluated 32 samples" in result.output
    assert len(set(sample_keys(tmp_path / "run"))) == 32
    bad = CliRunner().invoke(app, [*args[:4], "--executor", "slurm"])
    assert bad.exit_code == 2 and "unknown executor 'slurm'" in bad.output


@pytest.mark.engine
def test_tiny_study_on_the_engine_matches_local(cluster: Cluster, tmp_path: Path) -> None:
    """The real engine in Ray workers (one thread each, batches of 4): the same outputs and
    the same accuracy and statistics as the local executor's (speeds and memory differ)."""
    from quantmatrix.cli import preset_study
    from quantmatrix.pipeline.executors import ray_executor

    tiny = preset_study("tiny")
    tiny = tiny.model_copy(update={"threads": 1, "divergence": tiny.divergence.model_copy(
        update={"kld": False})})  # fmt: skip
    run_study(tiny, RunOptions(tmp_path / "local"))  # the user's cache: its ladder is reused
    ray_spec = tiny.executor.model_copy(update={"kind": "ray", "address": cluster.address})
    on_ray = tiny.model_copy(update={"executor": ray_spec})
    outcome = run_study(on_ray, RunOptions(tmp_path / "ray"))
    assert outcome.failed_variants == [] and ray_executor.LAST.shards == 4
    outputs = [{(r["variant"], r["item"]): r["output"] for r in read_rows(out / SAMPLES).rows}
               for out in (tmp_path / "local", tmp_path / "ray")]  # fmt: skip
    assert len(outputs[0]) == 32 and outputs[0] == outputs[1]
    assert quality_of(tmp_path / "ray") == quality_of(tmp_path / "local")
    ray_executor.disconnect()


def test_lost_node_loses_nothing_and_matches_local(cluster: Cluster, tmp_path: Path) -> None:
    from quantmatrix.pipeline.executors import ray_executor

    local = tmp_path / "local"
    run_study(tiny_fake(None, "local"), RunOptions(local, tmp_path / "cache"), slow_backend.create)
    ray_executor.disconnect()  # fresh actors: the slow backend below
    out, seen = tmp_path / "ray", {}
    watcher = kill_when_busy(cluster.nodes[1], out / SAMPLES, seen)
    outcome = run_study(
        tiny_fake(cluster.address), RunOptions(out, tmp_path / "cache"), slow_backend.create
    )
    watcher.join(timeout=5)
    assert 0 < seen["rows_at_kill"] < 32, "the node was not killed mid-run"
    assert outcome.failed_variants == [] and outcome.evaluated == 32
    keys = sample_keys(out)
    assert len(keys) == 32 and len(set(keys)) == 32  # none lost, none twice
    assert verify_run(out) == ([], [])
    rows = read_rows(out / VARIANTS).rows
    assert {r["variant"] for r in rows} == {"tiny@Q8_0", "tiny@Q4_K_M"}
    assert {r["backend"]["placement"] for r in rows} == {"exclusive"}
    assert analysis_of(out) == analysis_of(local)
