"""A real Ray cluster on 127.0.0.1 for the executor's tests: a head and worker nodes, each a
``ray start`` of its own, started in a new session so that every process it spawns (GCS,
raylet, workers) shares that session id; a node is stopped by killing exactly those processes
(never ``ray stop``, which would stop other people's Ray on this machine)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
SLOT = "quantmatrix"  # pipeline/executors/placement.SLOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    session: int  # the `ray start` process's pid, the session id of all it started
    label: str

    def pids(self) -> list[int]:
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getsid(proc.pid) == self.session:
                    found.append(proc.pid)
        return found

    def kill(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Cluster:
    temp_dir: Path
    port: int = field(default_factory=free_port)
    nodes: list[Node] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])  # workers import this checkout
        return {
            **os.environ,
            "PYTHONPATH": path,
            "RAY_USAGE_STATS_ENABLED": "0",
            # a killed node is declared dead within about two seconds
            "RAY_health_check_period_ms": "500",
            "RAY_health_check_timeout_ms": "1000",
            "RAY_health_check_failure_threshold": "2",
            "RAY_health_check_initial_delay_ms": "0",
        }

    def _start(self, args: list[str], label: str) -> Node:
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                  "--temp-dir", str(self.temp_dir), "--disable-usage-stats",
                  "--object-store-memory", str(80 * 2**20),
                  "--dashboard-agent-listen-port", str(free_port())]  # fmt: skip
        proc = subprocess.Popen(
            [RAY, "start", *args, *common],
            env=self.env(),
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        node = Node(proc.pid, label)
        self.nodes.append(node)  # recorded before it is up: cleaned up whatever happens
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed: {out.decode(errors='replace')[-2000:]}")
        return node

    def start_head(self) -> Node:
        resources = json.dumps({SLOT: 1})
        args = ["--head", "--port", str(self.port), "--include-dashboard", "false",
                "--ray-client-server-port", str(free_port()), "--resources", resources]  # fmt: skip
        return self._start(args, "head")

    def add_node(self, label: str) -> Node:
        resources = json.dumps({SLOT: 1, label: 1})
        return self._start(["--address", self.address, "--resources", resources], label)

    def wait_for_nodes(self, n: int, timeout: float = 60.0) -> None:
        import ray

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for x in ray.nodes() if x.get("Alive")) >= n:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the cluster did not reach {n} nodes")

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        deadline = time.monotonic() + 10
        while any(n.pids() for n in self.nodes) and time.monotonic() < deadline:
            time.sleep(0.2)
