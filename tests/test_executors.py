"""The executor pieces without a cluster: shards are whole batch groups, delivery writes each
key once, a worker refuses a file with other bytes, placement asks for the right resources,
several server endpoints share one model's work, and the executor stays out of the hash."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from quantmatrix.backends.base import BackendError
from quantmatrix.backends.fake import create as fake_create
from quantmatrix.config import ConfigError, Study, parse_study
from quantmatrix.engine import tiny_model
from quantmatrix.models.hashing import sha256_file
from quantmatrix.models.ladder import Variant
from quantmatrix.pipeline import RunOptions, run_study
from quantmatrix.pipeline.executors.base import Evaluated, VariantWork, cut_shards
from quantmatrix.pipeline.executors.delivery import Delivery, EvalLogs
from quantmatrix.pipeline.executors.placement import (
    PACK_SHARE,
    SLOT,
    Request,
    request_for,
    worker_study,
)
from quantmatrix.pipeline.executors.session import VariantSession
from quantmatrix.progress import SILENT
from quantmatrix.runlog import SAMPLES, VARIANTS, AppendLog, read_rows
from quantmatrix.tasks.plan import plan_samples
from tests.conftest import fake_study_dict
from tests.ollama_standin import OllamaStandIn


def fake_variant(level: str = "Q8_0", path: Path | None = None) -> Variant:
    return Variant("m", level, path, None, "fake", "F16", False)


def test_shards_are_whole_batch_groups(fake_study: Study) -> None:
    samples = plan_samples(fake_study)
    asked = list(enumerate(samples))[:10]
    shards = cut_shards("m@F16", asked, group_size=4, per_shard=3)
    assert [[i for i, _ in s.items] for s in shards] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    ones = cut_shards("m@F16", asked, group_size=1, per_shard=3)
    assert [len(s.items) for s in ones] == [3, 3, 3, 1] and ones[3].number == 3
    resumed = asked[4:8] + asked[9:10]  # pending_groups' shape: whole groups of the plan
    assert [[i for i, _ in s.items] for s in cut_shards("m", resumed, 4, 1)] == [[4, 5, 6, 7], [9]]


def test_delivery_writes_each_key_once(tmp_path: Path, fake_study: Study) -> None:
    spec, variant = fake_study.models[0], fake_variant()
    samples = list(enumerate(plan_samples(fake_study)))[:6]
    shard = cut_shards(variant.id, samples, 1, 6)[0]
    session = VariantSession(variant, spec, fake_study, fake_create)
    result = session.run(shard)
    outcome = Evaluated()
    with AppendLog(tmp_path / SAMPLES) as log, AppendLog(tmp_path / VARIANTS) as vlog:
        done = frozenset({result.rows[0].key})  # one already logged by an earlier session
        delivery = Delivery(EvalLogs(log, vlog, "s1"), done, SILENT, outcome, 1)
        assert delivery.shard(result) == 5
        assert delivery.shard(result) == 0  # delivered again after a lost worker: no-op
        delivery.session(variant.id, session.stats())
        delivery.finish(VariantWork(spec, variant, (shard,), 5))
    assert outcome.evaluated == 5 and len(read_rows(tmp_path / SAMPLES).rows) == 5
    (row,) = read_rows(tmp_path / VARIANTS).rows
    assert row["session_samples"] == 5 and row["session_eval_wall_s"] == result.eval_wall_s
    assert row["session_native_s"] == pytest.approx(result.native_s)


def test_worker_refuses_a_file_with_other_bytes(tmp_path: Path, fake_study: Study) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF built on the driver")
    good = replace(fake_variant(path=path), sha256=sha256_file(path))
    VariantSession(good, fake_study.models[0], fake_study, fake_create).close()
    path.write_bytes(b"GGUF other bytes, same path")
    with pytest.raises(BackendError, match=r"has SHA-256 .* not the driver's"):
        VariantSession(good, fake_study.models[0], fake_study, fake_create)
    gone = replace(good, path=tmp_path / "absent.gguf")
    with pytest.raises(BackendError, match="is not on this host"):
        VariantSession(gone, fake_study.models[0], fake_study, fake_create)


def test_placement_asks_for_threads_memory_gpus_and_the_slot(tmp_path: Path) -> None:
    path = tiny_model.write_tiny_llama(tmp_path / "tiny.gguf")
    model = {"name": "t", "source": str(path), "levels": ["Q8_0"], "gpu_layers": 0}
    study = Study.model_validate(fake_study_dict(models=[model], batch_size=4))
    variant = fake_variant(path=path)
    timed = request_for(study.models[0], variant, study, threads=3, exclusive=True)
    kv = 2 * tiny_model.LAYERS * tiny_model.HIDDEN * 2 * study.context_length
    size = path.stat().st_size
    assert timed.num_cpus == 3 and timed.num_gpus == 0 and timed.slot == 1.0
    assert timed.memory == int((size + kv * 5) * 1.25)  # 4 batch sequences + the single one
    assert timed.options()["resources"] == {SLOT: 1.0}
    gpu = study.model_copy(
        update={"models": [study.models[0].model_copy(update={"gpu_layers": 8})]}
    )
    packed = request_for(gpu.models[0], variant, gpu, threads=1, exclusive=False)
    assert packed.num_gpus == 1 and packed.slot == PACK_SHARE
    seen = worker_study(study, study.models[0], 3)
    assert seen.threads == 3 and seen.gpu_layers == 0


@pytest.fixture
def two_ollamas() -> Iterator[tuple[OllamaStandIn, OllamaStandIn]]:
    delay = lambda body: 0.02  # noqa: E731 - both busy long enough to share the work
    servers = tuple(
        OllamaStandIn(models={"tiny:q4_K_M": 1, "tiny:q8_0": 1}, delay_s=delay).start()
        for _ in range(2)
    )
    yield servers  # type: ignore[misc]
    for server in servers:
        server.stop()


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_endpoints_share_a_models_work_without_ray(
    tmp_path: Path, two_ollamas: tuple[OllamaStandIn, OllamaStandIn], kind: str
) -> None:
    """Also with the ray executor chosen: server work stays on the driver, no cluster joined."""
    import ray

    urls = [s.url for s in two_ollamas]
    model = {"name": "tiny", "backend": "ollama", "endpoints": urls, "source": "tiny",
             "levels": ["Q8_0", "Q4_K_M"]}  # fmt: skip
    tasks = [{"kind": "arc_challenge", "n": 12}]
    executor = {"kind": kind, "shard_samples": 2}
    study = parse_study(fake_study_dict(models=[model], tasks=tasks, executor=executor))
    outcome = run_study(study, RunOptions(tmp_path, tmp_path / "cache"))
    assert outcome.failed_variants == [] and outcome.evaluated == 24
    keys = [(r["variant"], r["item"]) for r in read_rows(tmp_path / SAMPLES).rows]
    assert len(keys) == len(set(keys)) == 24
    asked = [len(s.bodies("/api/generate")) + len(s.bodies("/api/chat")) for s in two_ollamas]
    assert all(n >= 4 for n in asked), asked  # warm-ups + shards on each server
    rows = read_rows(tmp_path / VARIANTS).rows
    assert [sorted(r["backend"]["hosts"]) for r in rows] == [sorted(urls)] * 2
    assert not ray.is_initialized()


def test_executor_is_kept_out_of_the_hash_and_checked() -> None:
    plain = parse_study(fake_study_dict())
    ray = parse_study(fake_study_dict(executor="ray"))
    assert ray.executor.kind == "ray" and ray.config_hash() == plain.config_hash()
    assert "executor" not in ray.model_dump()
    with pytest.raises(ConfigError, match=r"executor\.kind"):
        parse_study(fake_study_dict(executor="slurm"))
    bad = {"name": "m", "source": "fake", "backend": "fake", "levels": ["Q8_0"],
           "endpoints": ["http://h1:11434"]}  # fmt: skip
    with pytest.raises(ConfigError, match="endpoints name servers"):
        parse_study(fake_study_dict(models=[bad]))
    both = {**bad, "backend": "ollama", "endpoint": "http://h0:11434"}
    with pytest.raises(ConfigError, match="endpoint or endpoints, not both"):
        parse_study(fake_study_dict(models=[both]))


def test_an_actor_no_node_can_hold_is_refused_up_front() -> None:
    from quantmatrix.pipeline.executors.ray_executor import fits_a_node

    nodes = [{"Resources": {"CPU": 4.0, "memory": 8e9, SLOT: 1.0}},
             {"Resources": {"CPU": 1.0, "GPU": 1.0, "memory": 32e9, SLOT: 1.0}}]  # fmt: skip
    assert fits_a_node(Request(4, 0, 6 * 10**9, 1.0).options(), nodes)
    assert fits_a_node(Request(1, 1, 16 * 10**9, 1.0).options(), nodes)
    assert not fits_a_node(Request(2, 1, 10**9, 1.0).options(), nodes)  # GPU node has 1 CPU
    assert not fits_a_node(Request(1, 0, 64 * 10**9, PACK_SHARE).options(), nodes)
