"""The kill campaign: the study killed with SIGKILL at ``--kills`` seeded points spread over
every phase, resumed each time, then compared with an uninterrupted run.

    python bench/campaign_kill.py --kills 24 --seed 1 --ray

The study (written into the work folder, or ``--study FILE``) is SmolLM2-135M at F16, Q8_0
and Q4_K_M from a fresh cache (so the ladder build can be killed; the engine probe too on the
first attempt), batched evaluation (4 requests together) in adaptive rounds, the single-stream
timing phase, token KL, generation scoring with the packaged MiniLM model, and the report; with
``--ray`` some evaluation attempts run on a local Ray cluster (tests/ray_cluster.py) and kill
its driver. Each attempt is ``python -m quantmatrix run ... --progress lines`` in a session of
its own, killed as a process group. Prints every kill (the phase aimed at and hit, the rows
then), kills per phase, resumes, rows compared and mismatches (0), ``verify``, stray
temporary files, and whether the report files and analysis.json match (tests/kill_campaign.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import kill_campaign as kc  # noqa: E402

STUDY = {
    "name": "kill-campaign",
    "models": [{"name": "smollm2-135m-instruct", "source": "smollm2-135m-instruct",
                "levels": ["F16", "Q8_0", "Q4_K_M"]}],
    "tasks": [{"kind": "mmlu", "per_subject": None, "n": 6},
              {"kind": "arc_challenge", "n": 6},
              {"kind": "generation", "per_task": 1, "tasks": ["qa", "classification"],
               "max_new_tokens": 16}],
    "warmup_runs": 1, "threads": 1, "context_length": 1024, "batch_size": 4,
    "decoding": {"mc_max_new_tokens": 8},
    "sampling": {"mode": "adaptive", "min_items": 4, "max_items": 12, "round": 4},
    "timing": {"multiple_choice": 2, "generation": 1, "round_items": 2, "warmup_runs": 1},
    "divergence": {"corpus_tokens": 128, "chunk_tokens": 64},
    "scoring": {"embedding_model": "minilm", "bertscore_backend": "shared", "batch_size": 4},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ray", action="store_true", help="kill the Ray driver too")
    parser.add_argument("--study", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="campaign-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    study = args.study or work / "study.yaml"
    if args.study is None:
        study.write_text(yaml.safe_dump(STUDY, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    started, load = time.monotonic(), os.getloadavg()
    cluster = None
    try:
        address = None
        if args.ray:
            from tests.ray_cluster import Cluster

            cluster = Cluster(work / "ray")
            cluster.start_head()
            address = cluster.address
        setup = kc.Setup(study, work, env=env, ray_address=address)
        print(f"work folder {work}; load average at start {load[0]:.1f} {load[1]:.1f}")
        ref = kc.reference_run(setup)
        print(f"reference run: {ref.wall_s:.0f} s, rows {ref.snapshots[-1].rows}")
        points = kc.plan_kills(ref, kc.quotas(args.kills, args.ray), args.seed)
        print(f"{len(points)} kill points (seed {args.seed}):")
        for point in kc.describe(points):
            print("  " + json.dumps(point))
        verdict = kc.run_campaign(setup, ref, points, say=lambda line: print(line, flush=True))
    finally:
        if cluster is not None:
            cluster.close()
    print("\n".join(verdict.summary()))
    end = os.getloadavg()
    print(f"total wall {time.monotonic() - started:.0f} s; load average at the end "
          f"{end[0]:.1f} {end[1]:.1f}; {'OK' if verdict.ok else 'FAILED'}")  # fmt: skip
    sys.exit(0 if verdict.ok else 1)


if __name__ == "__main__":
    main()
