"""Two run folders of one study compared row by row, apart from what timing changes, for the
kill and server-fault campaigns (tests/kill_campaign.py, tests/server_campaign.py).

Rows are matched by their key (``runlog/rows.py``); a key in one run and not the other is lost
(or extra), a key twice in one file is duplicated, and matched rows must be equal once the
fields in :data:`EXCLUDED` are left out. Variant rows are one per variant and *session*, so a
run resumed after kills has more of them: there every row of a variant must carry the same
facts about its file and source as the uninterrupted run's (:data:`VARIANT_FACTS`), and every
variant with samples must have one.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantmatrix.runlog import KLD, SAMPLES, SCORES, TIMING, VARIANTS, read_rows
from quantmatrix.runlog.rows import ROW_TYPES

# field (dotted path) -> why it may differ between an uninterrupted run and a resumed one
EXCLUDED: dict[str, str] = {
    "timing.wall_s": "the client's wall time of the request",
    "timing.prompt_eval_s": "the engine's prompt-evaluation time",
    "timing.decode_s": "the engine's decode time",
    "timing.ttft_s": "the time to the first token",
    "session": "which run_study call wrote the row (timing rows; a resumed run has several)",
    "sha256": "the row's own digest, over the fields above too",
}
# variant rows: what must be the same in every session's row (the rest is the session's own:
# warm-up and evaluation times, memory peaks, samples written in that session, session id)
VARIANT_FACTS = ("model", "level", "file", "source_sha256", "source_type", "reconstructed",
                 "origin", "source", "imatrix", "warmup_runs", "backend", "config")  # fmt: skip
# inside those facts: the cache folder's path (each campaign builds into a fresh cache), the
# model's load time, and where a Ray session ran (hosts, placement)
VARIANT_EXCLUDED = ("file.path", "backend.load_s", "backend.hosts", "backend.placement")
KEYED_FILES = (SAMPLES, TIMING, KLD, SCORES)


def _drop(row: dict[str, Any], paths: tuple[str, ...] | list[str]) -> dict[str, Any]:
    out = json.loads(json.dumps(row))
    for dotted in paths:
        *parents, last = dotted.split(".")
        node = out
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def _key(name: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(f) for f in ROW_TYPES[name].KEY)


@dataclass
class FileComparison:
    name: str
    compared: int = 0  # keys in both runs
    lost: list[tuple[Any, ...]] = field(default_factory=list)  # in the reference only
    extra: list[tuple[Any, ...]] = field(default_factory=list)  # in the other run only
    duplicated: list[tuple[Any, ...]] = field(default_factory=list)
    mismatched: list[tuple[Any, ...]] = field(default_factory=list)
    first_difference: str = ""

    @property
    def ok(self) -> bool:
        return not (self.lost or self.extra or self.duplicated or self.mismatched)


def compare_file(name: str, reference: Path, other: Path) -> FileComparison:
    """Rows of ``name`` in two run folders, matched by key, :data:`EXCLUDED` left out."""
    out = FileComparison(name)
    rows = [read_rows(run / name).rows for run in (reference, other)]
    counts = Counter(_key(name, r) for r in rows[1])
    out.duplicated = sorted((k for k, n in counts.items() if n > 1), key=str)
    ref = {_key(name, r): _drop(r, list(EXCLUDED)) for r in rows[0]}
    got = {_key(name, r): _drop(r, list(EXCLUDED)) for r in rows[1]}
    out.lost = sorted(set(ref) - set(got), key=str)
    out.extra = sorted(set(got) - set(ref), key=str)
    for key in sorted(set(ref) & set(got), key=str):
        out.compared += 1
        if ref[key] != got[key]:
            out.mismatched.append(key)
            if not out.first_difference:
                out.first_difference = _difference(key, ref[key], got[key])
    return out


def _difference(key: tuple[Any, ...], a: dict[str, Any], b: dict[str, Any]) -> str:
    fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = {f: (a.get(f), b.get(f)) for f in fields[:3]}
    return f"{key}: {json.dumps(shown, default=str)[:600]}"


def compare_variants(reference: Path, other: Path) -> FileComparison:
    """Every variant row of ``other`` states its variant's facts as the reference's first
    row does; every variant with samples in ``other`` has a row."""
    out = FileComparison(VARIANTS)
    ref_rows = read_rows(reference / VARIANTS).rows
    facts = {r["variant"]: _facts(r) for r in ref_rows}
    got = read_rows(other / VARIANTS).rows
    counts = Counter((r["variant"], r.get("session")) for r in got)
    out.duplicated = sorted((k for k, n in counts.items() if n > 1), key=str)
    sampled = {r["variant"] for r in read_rows(other / SAMPLES).rows}
    have = {r["variant"] for r in got}
    out.lost = [(v,) for v in sorted((set(facts) & sampled) - have)]
    out.extra = [(v,) for v in sorted(have - set(facts))]
    for row in got:
        if row["variant"] not in facts:
            continue
        out.compared += 1
        if _facts(row) != facts[row["variant"]]:
            key = (row["variant"], row.get("session"))
            out.mismatched.append(key)
            if not out.first_difference:
                out.first_difference = _difference(key, facts[row["variant"]], _facts(row))
    return out


def _facts(row: dict[str, Any]) -> dict[str, Any]:
    return _drop({k: row.get(k) for k in VARIANT_FACTS}, VARIANT_EXCLUDED)


def compare_runs(reference: Path, other: Path) -> list[FileComparison]:
    """Every keyed log file, then the variant rows."""
    return [
        *(compare_file(name, reference, other) for name in KEYED_FILES),
        compare_variants(reference, other),
    ]


# analysis.json: what the engine's speed and memory readings change, left out of the
# comparison: the per-variant timing, speed, memory and overhead blocks, the statistics'
# timing section, file paths (each campaign builds its ladder into a cache of its own), and
# every part of the decision that prices or ranks by speed, cost or memory (its answer and
# summary sentences, the matrix, the Pareto fronts, memory, diminishing returns and its
# per-variant rows); the decision's tier counts, cliffs, task differentials and the variants
# not recommended (with their certified bounds) are compared
ANALYSIS_EXCLUDED = frozenset({
    "timing", "single_stream", "speed", "speed_basis", "memory", "overhead",
    "harness_overhead", "eval_wall_s", "log_warnings", "path",
})  # fmt: skip
DECISION_COMPARED = ("basis", "cliffs", "not_recommended", "task_differential", "tier_counts")


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ANALYSIS_EXCLUDED}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def analysis_quality(run: Path) -> Any:
    """``analysis.json`` without :data:`ANALYSIS_EXCLUDED`, its decision reduced to
    :data:`DECISION_COMPARED`."""
    body = json.loads((run / "analysis.json").read_text())
    decision = body.pop("decision", {})
    body["decision"] = {k: decision.get(k) for k in DECISION_COMPARED}
    return _strip(body)


def lines(comparisons: list[FileComparison]) -> list[str]:
    """One line per file: rows compared, lost, extra, duplicated, mismatched."""
    out = []
    for c in comparisons:
        out.append(
            f"{c.name}: {c.compared} compared, {len(c.lost)} lost, {len(c.extra)} extra, "
            f"{len(c.duplicated)} duplicated, {len(c.mismatched)} mismatched"
            + (f" (first: {c.first_difference})" if c.first_difference else "")
        )
    return out
