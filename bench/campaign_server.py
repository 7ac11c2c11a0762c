"""Server faults as a campaign: a study on a server backend through a fault-injecting proxy
(tests/fault_proxy.py), compared with a fault-free run through the same proxy.

    python bench/campaign_server.py --server standin-ollama --faults 6 --mc 40
    python bench/campaign_server.py --server standin-openai --faults 6 --mc 40
    python bench/campaign_server.py --server llama --faults 2 --mc 8   # real llama_cpp.server

Faults, ``--faults`` of each kind in a seeded order (``--seed``): refused connections (the
proxy not listening), stalls past the client's timeout, 5xx bursts, malformed JSON, replies
cut mid-stream, the server killed mid-reply and restarted; then, with ``--outage``, the server
down past the retries (its variant fails, a rerun completes it). Prints the faults injected
per kind, the requests and retries the proxy saw, and the rows compared with the fault-free
run (mismatches must be 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import server_campaign as sc  # noqa: E402
from tests.fault_proxy import FaultProxy, Schedule  # noqa: E402

KINDS = ("refuse", "stall", "5xx", "malformed", "drop", "restart")


def upstream_for(server: str, work: Path) -> tuple[object, sc.Retry, float, str, dict[str, str]]:
    """(upstream, the client's retries, the stall, the backend, the served names)."""
    if server.startswith("standin"):
        backend = server.split("-", 1)[1]
        return sc.StandinUpstream(), sc.Retry(1.0, 4, 0.1), 1.5, backend, sc.TAGS
    from quantmatrix.models.sources import resolve_source

    model = resolve_source("smollm2-135m-instruct", "smollm2-135m-instruct").path
    llama = sc.LlamaUpstream(model, work / "server.log")
    llama.start()
    llama.wait_up()
    # a restart reloads the model: the retries wait up to 0.5 * 63 = 31.5 s
    return llama, sc.Retry(30.0, 6, 0.5), 31.0, "openai", dict.fromkeys(sc.TAGS, "smollm2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="standin-ollama",
                        choices=["standin-ollama", "standin-openai", "llama"])  # fmt: skip
    parser.add_argument("--faults", type=int, default=6, help="faults of each kind")
    parser.add_argument("--mc", type=int, default=40, help="multiple-choice items per level")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--outage", action="store_true", help="also: down past the retries")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="campaign-server-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    upstream, retry, stall, backend, tags = upstream_for(args.server, work)
    kill, start = upstream.kill, upstream.start  # type: ignore[attr-defined]
    address = upstream.address  # type: ignore[attr-defined]
    down = retry.patience_s * 0.3 if args.server == "llama" else 0.3
    proxy = FaultProxy(address, Schedule(), kill, start, refuse_s=retry.patience_s * 0.3,
                       stall_s=stall, restart_s=down, outage_s=retry.patience_s * 1.6)  # fmt: skip
    try:
        study = sc.server_study(proxy.url, backend, args.mc, tags)
        counts = {kind: args.faults for kind in KINDS}
        # a restarted llama_cpp.server takes several retries to come back: wider spacing
        spacing = (4, 8) if args.server == "llama" else (2, 5)
        schedule = Schedule.seeded(args.seed, counts, start=2, spacing=spacing)
        print(f"{args.server}: {args.mc} items x 2 levels, {args.faults} faults of each kind, "
              f"seed {args.seed}, client timeout {retry.timeout_s:g} s, {retry.retries} retries "
              f"over {retry.patience_s:g} s; work folder {work}")  # fmt: skip
        verdict = sc.campaign(proxy, schedule, study, retry, work / "faults")
        print("\n".join(verdict.summary()))
        ok = verdict.mismatches == 0 and not verdict.problems and verdict.analysis_equal
        if args.outage:
            print("-- the server down past the retries:")
            outage = sc.campaign(proxy, Schedule({8: "outage"}), study, retry, work / "outage")
            print("\n".join(outage.summary()))
            ok = ok and outage.mismatches == 0 and outage.outcomes[-1].failed_variants == []
        print(f"total wall {time.monotonic() - started:.0f} s; {'OK' if ok else 'FAILED'}")
    finally:
        proxy.close()
        upstream.kill()  # type: ignore[attr-defined]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
