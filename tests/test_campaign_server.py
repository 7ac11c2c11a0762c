"""Server faults as a campaign, reduced (bench/campaign_server.py runs it in full): a study on
a server backend through the fault proxy meets refused connections, stalls past the timeout,
5xx bursts, malformed JSON, replies cut mid-stream and the server killed and restarted, and
ends with the rows of a fault-free run but for timing, none duplicated. A server down past the
retries fails its variant; the rerun completes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import server_campaign as sc
from tests.fault_proxy import FaultProxy, Schedule

pytestmark = pytest.mark.slow  # stalls past the timeout, restarts: tens of seconds

KINDS = {"refuse": 2, "stall": 2, "5xx": 2, "malformed": 2, "drop": 3, "restart": 2}
QUICK = sc.Retry(timeout_s=1.0, retries=4, backoff_s=0.1)  # 1.5 s of retries in all


@pytest.fixture
def standin_proxy() -> Iterator[tuple[sc.StandinUpstream, FaultProxy]]:
    upstream = sc.StandinUpstream()
    proxy = FaultProxy(upstream.address, Schedule(), upstream.kill, upstream.start,
                       refuse_s=0.4, stall_s=1.5, restart_s=0.3)  # fmt: skip
    yield upstream, proxy
    proxy.close()
    upstream.kill()


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_every_fault_kind_on_the_standin_loses_nothing(
    tmp_path: Path, standin_proxy: tuple[sc.StandinUpstream, FaultProxy], backend: str
) -> None:
    """Both server backends (Ollama's NDJSON streams, OpenAI-style server-sent events) against
    the stand-in, which speaks both APIs."""
    _, proxy = standin_proxy
    study = sc.server_study(proxy.url, backend, mc=20)
    schedule = Schedule.seeded(11, KINDS, start=2, spacing=(2, 4))
    verdict = sc.campaign(proxy, schedule, study, QUICK, tmp_path)
    print("\n".join(verdict.summary()))
    assert set(verdict.counts.faults) == set(KINDS), verdict.summary()
    assert verdict.counts.retries >= sum(verdict.counts.faults.values()) - 2
    assert [o.failed_variants for o in verdict.outcomes] == [[]]  # every fault was retried
    assert verdict.comparisons[0].compared == 40 and verdict.mismatches == 0
    assert verdict.comparisons[1].compared == 4  # the timing rows
    assert verdict.problems == [] and verdict.analysis_equal


def test_a_server_down_past_the_retries_fails_its_variant_and_the_rerun_completes_it(
    tmp_path: Path, standin_proxy: tuple[sc.StandinUpstream, FaultProxy]
) -> None:
    _, proxy = standin_proxy
    proxy.outage_s = 2.5  # longer than QUICK's 1.5 s of retries
    study = sc.server_study(proxy.url, "ollama", mc=10)
    verdict = sc.campaign(proxy, Schedule({8: "outage"}), study, QUICK, tmp_path)
    print("\n".join(verdict.summary()))
    assert verdict.counts.faults["outage"] == 1 and verdict.counts.upstream_down >= 3
    first, *rest = verdict.outcomes
    assert first.failed_variants == ["tiny@Q8_0"], verdict.summary()  # the other one went on
    assert rest and rest[-1].failed_variants == []
    assert verdict.comparisons[0].compared == 20 and verdict.mismatches == 0
    assert verdict.problems == [] and verdict.analysis_equal


@pytest.mark.engine
def test_every_fault_kind_on_a_real_llama_cpp_server_loses_nothing(tmp_path: Path) -> None:
    """The OpenAI-compatible backend against ``python -m llama_cpp.server`` on SmolLM2 (one
    thread): the server killed mid-reply comes back by itself (it reloads the model), within
    the client's retries; greedy answers equal the fault-free run's."""
    from quantmatrix.models.sources import resolve_source

    model = resolve_source("smollm2-135m-instruct", "smollm2-135m-instruct").path
    upstream = sc.LlamaUpstream(model, tmp_path / "server.log")
    upstream.start()
    retry = sc.Retry(timeout_s=30.0, retries=6, backoff_s=0.5)  # 31.5 s of retries
    proxy = FaultProxy(upstream.address, Schedule(), upstream.kill, upstream.start,
                       refuse_s=2.0, stall_s=31.0, restart_s=1.0)  # fmt: skip
    try:
        upstream.wait_up()
        faults = {2: "5xx", 3: "5xx", 6: "refuse", 9: "stall", 12: "malformed", 15: "drop",
                  18: "restart"}  # fmt: skip
        study = sc.server_study(proxy.url, "openai", 6, dict.fromkeys(sc.TAGS, "smollm2"))
        verdict = sc.campaign(proxy, Schedule(faults), study, retry, tmp_path)
    finally:
        proxy.close()
        upstream.kill()
    print("\n".join(verdict.summary()))
    assert dict(verdict.counts.faults) == dict(Schedule(faults).planned())
    assert upstream.starts == 2 and verdict.outcomes[0].failed_variants == []
    assert verdict.comparisons[0].compared == 12 and verdict.mismatches == 0
    assert verdict.problems == [] and verdict.analysis_equal
