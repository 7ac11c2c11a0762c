"""Fuzzed run logs (issue 17 item 4): a real fake-backend run folder with bytes flipped, lines
cut, repeated, deleted or swapped, rows of another schema version, another row type or
another run, and a damaged ``manifest.json``; then ``verify``, ``report``, ``recommend``,
``validate``, ``compare``, ``run`` (resume) or ``verify --repair`` on it. Each is a correct
result or one error line, never a traceback, and never damages what was there: readers
change nothing, ``report`` only appends scores, ``run`` only appends rows (after cutting a
torn last line), ``verify --repair`` keeps the old file beside the new one.
Used by tests/test_fuzz_runlog.py and bench/campaign_fuzz.py.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from quantmatrix.cli import app
from quantmatrix.config import load_study
from quantmatrix.runlog import LOG_FILES, MANIFEST, SAMPLES, VARIANTS, RunLog, seal
from quantmatrix.runlog.lock import LOCK
from quantmatrix.tasks.plan import plan_samples
from tests.conftest import fake_study_dict
from tests.fuzz_cases import ROOT, FuzzFailure, judge, runner

LOG_STUDY = fake_study_dict(
    models=[{"name": "m", "source": "fake", "backend": "fake", "levels": ["F16", "Q4_K_M"]}],
    tasks=[
        {"kind": "mmlu", "per_subject": None, "n": 6},
        {"kind": "arc_challenge", "n": 4},
        {"kind": "generation", "per_task": 1, "max_new_tokens": 16},
    ],
    timing={"multiple_choice": 2, "generation": 1, "warmup_runs": 0},
)
V1_SAMPLE = (ROOT / "tests/fixtures/runlog_v1/samples.jsonl").read_bytes().splitlines()[0]
COMMANDS = ["verify", "report", "recommend", "validate", "compare", "run", "repair"]
Files = dict[str, bytes | None]  # file name -> content (None: the file is removed)


def make_template(folder: Path) -> Path:
    """A finished run of LOG_STUDY in ``folder/run`` (its study file beside); the run folder."""
    folder.mkdir(parents=True, exist_ok=True)
    study = folder / "study.yaml"
    study.write_text(yaml.safe_dump(LOG_STUDY))
    out = folder / "run"
    args = ["run", str(study), "--out", str(out), "--cache", str(folder / "cache"), "--quiet"]
    assert judge(runner.invoke(app, args)) == "ok"
    TEMPLATE.clear()
    TEMPLATE.update(log_files(out))
    return out


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _resealed(row: dict[str, Any]) -> bytes:
    return json.dumps(seal(row), sort_keys=True, separators=(",", ":")).encode()


def _row(draw: st.DrawFn, data: bytes) -> dict[str, Any] | None:
    rows = [ln for ln in _lines(data) if ln.strip()]
    if not rows:
        return None
    try:
        row = json.loads(draw(st.sampled_from(rows)))
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def _foreign_line(draw: st.DrawFn, name: str, files: Files) -> bytes:
    """A line that does not belong: another version, row type or run, a wrong field type."""
    row = _row(draw, files.get(name) or b"") or {"variant": "m@F16"}
    kind = draw(
        st.sampled_from(["schema 99", "v1 sample", "v1 of this run", "other file's row",
                         "wrong type", "extra field", "no sha", "json scalar", "other run"])
    )  # fmt: skip
    if kind == "schema 99":
        return _resealed({**row, "schema": 99})
    if kind == "v1 sample":
        return V1_SAMPLE
    if kind == "v1 of this run":
        v1 = json.loads(V1_SAMPLE)
        keep = {k: row[k] for k in ("variant", "config", "item", "task") if k in row}
        return _resealed({**v1, **keep})
    if kind == "other file's row":
        other = _row(draw, files.get(VARIANTS if name != VARIANTS else SAMPLES) or b"")
        return _resealed(other or {"kind": "variant"})
    if kind == "wrong type":
        field = draw(st.sampled_from(sorted(row) or ["x"]))
        return _resealed({**row, field: draw(st.sampled_from([None, 5, "x", [], {}, -1.5]))})
    if kind == "extra field":
        return _resealed({**row, "colour": "blue"})
    if kind == "no sha":
        return json.dumps({k: v for k, v in row.items() if k != "sha256"}).encode()
    if kind == "other run":
        return _resealed({**row, "config": "0" * 64})
    return draw(st.sampled_from([b"null", b"[]", b"1", b'"x"', b"{}", b"\xff\xfe", b"{" * 50]))


def _edit_log(draw: st.DrawFn, name: str, files: Files) -> None:
    data = files.get(name) or b""
    lines = _lines(data)
    op = draw(
        st.sampled_from(["flip", "cut line", "torn tail", "repeat line", "conflict",
                         "delete line", "swap lines", "insert foreign", "empty", "remove"])
    )  # fmt: skip
    i, j = (draw(st.integers(0, max(len(lines) - 2, 0))) for _ in range(2))
    if op == "flip" and data:
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 3))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        files[name] = bytes(raw)
    elif op == "cut line" and lines[i]:
        lines[i] = lines[i][: draw(st.integers(0, len(lines[i]) - 1))]
        files[name] = b"\n".join(lines)
    elif op == "torn tail" and data:
        files[name] = data[: draw(st.integers(0, len(data) - 1))]
    elif op == "repeat line":
        lines.insert(j, lines[i])
        files[name] = b"\n".join(lines)
    elif op == "conflict" and (row := _row(draw, data)) is not None:
        changed = {**row, "output": "Z"} if "output" in row else {**row, "session": "other"}
        files[name] = data + _resealed(changed) + b"\n"
    elif op == "delete line":
        del lines[i]
        files[name] = b"\n".join(lines)
    elif op == "swap lines":
        lines[i], lines[j] = lines[j], lines[i]
        files[name] = b"\n".join(lines)
    elif op == "insert foreign":
        lines.insert(j, _foreign_line(draw, name, files))
        files[name] = b"\n".join(lines)
    elif op == "empty":
        files[name] = b""
    elif op == "remove":
        files[name] = None


def _edit_manifest(draw: st.DrawFn, files: Files) -> None:
    data = files.get(MANIFEST) or b"{}"
    op = draw(st.sampled_from(["flip", "truncate", "remove", "drop key", "wrong type", "config"]))
    if op == "flip":
        raw = bytearray(data)
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        files[MANIFEST] = bytes(raw)
    elif op == "truncate":
        files[MANIFEST] = data[: draw(st.integers(0, len(data) - 1))]
    elif op == "remove":
        files[MANIFEST] = None
    else:
        try:
            manifest = json.loads(data)
        except ValueError:  # damaged by an earlier edit already
            return
        if not isinstance(manifest, dict):
            return
        key = draw(st.sampled_from(["config", "config_hash", "variants", "sources"]))
        if op == "drop key":
            manifest.pop(key, None)
        elif op == "wrong type":
            manifest[key] = draw(st.sampled_from([None, 5, "x", [], {}]))
        elif isinstance(manifest.get("config"), dict):  # the study in it damaged
            field = draw(st.sampled_from(["models", "tasks", "decoding", "warmup_runs", "name"]))
            manifest["config"][field] = draw(st.sampled_from([None, "x", -3, [], {"a": 1}]))
        files[MANIFEST] = json.dumps(manifest).encode()


TEMPLATE: Files = {}  # the template run's files, set by make_template


@st.composite
def damaged(draw: st.DrawFn) -> Files:
    """One to three edits of the template run's log files and manifest."""
    assert TEMPLATE, "make_template first"
    files = dict(TEMPLATE)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([*(n for n in LOG_FILES if files.get(n)), MANIFEST]))
        if name == MANIFEST:
            _edit_manifest(draw, files)
        else:
            _edit_log(draw, name, files)
    return files


def log_files(run: Path) -> Files:
    names = (*LOG_FILES, MANIFEST)
    return {name: (run / name).read_bytes() for name in names if (run / name).exists()}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _whole(data: bytes) -> bytes:
    """The complete lines of a log file (what a resumed run keeps)."""
    return data if data.endswith(b"\n") or not data else data[: data.rfind(b"\n") + 1]


def _args(command: str, out: Path, study: Path, work: Path) -> tuple[list[str], bool]:
    """The command line, and whether exit 1 with a listing is its normal answer."""
    cache = ["--cache", str(work / "cache"), "--quiet"]
    return {
        "verify": (["verify", str(out)], True),
        "repair": (["verify", "--repair", str(out)], True),
        "report": (["report", str(out)], False),
        "recommend": (["recommend", str(out)], False),
        "validate": (["validate", str(out), "--variant", "m@Q4_K_M"], False),
        "compare": (["compare", str(out), str(out)], False),
        "run": (["run", str(study), "--out", str(out), *cache], False),
    }[command]


def check_log_case(
    template: Path, files: Files, command: str, work: Path, tally: Counter[str]
) -> None:
    """Damage a copy of ``template`` as ``files`` says, run ``command`` on it, check the result
    and that nothing already there was damaged."""
    out = work / "run"
    shutil.copytree(template, out)
    for name, data in files.items():
        if data is None:
            (out / name).unlink(missing_ok=True)
        else:
            (out / name).write_bytes(data)
    study = template.parent / "study.yaml"
    before = snapshot(out)
    args, listing = _args(command, out, study, work)
    verdict = judge(runner.invoke(app, args), listing=listing)
    after = snapshot(out)
    leftovers = [n for n in after if n == LOCK or Path(n).name.startswith(".")]
    if leftovers:
        raise FuzzFailure(f"{command} left {leftovers} behind")
    _check_kept(command, before, after)
    if command == "run" and verdict == "ok":
        _check_resumed(out, study)
    tally[f"{command}: {verdict}"] += 1


def _check_kept(command: str, before: dict[str, bytes], after: dict[str, bytes]) -> None:
    if command in ("verify", "recommend", "validate", "compare"):
        if after != before:
            raise FuzzFailure(f"{command} changed {sorted(set(after) ^ set(before))}")
        return
    for name in LOG_FILES:
        old, new = before.get(name), after.get(name)
        if old is None or new == old:
            continue
        if command == "repair":
            backups = [after[n] for n in after if n.startswith(f"{name}.before-repair-")]
            if old in backups and _subsequence(_lines(new or b""), _lines(old)):
                continue
        elif new is not None and new.startswith(_whole(old) if command == "run" else old):
            continue
        raise FuzzFailure(f"{command} damaged {name}")
    if command != "run" and after.get(MANIFEST) != before.get(MANIFEST):
        raise FuzzFailure(f"{command} changed {MANIFEST}")


def _subsequence(part: list[bytes], whole: list[bytes]) -> bool:
    it = iter(whole)
    return all(line in it for line in part)


def _check_resumed(out: Path, study_file: Path) -> None:
    """A resumed run that exits 0 holds every planned item for every variant."""
    log = RunLog.load(out)
    planned = {(s.task, s.item) for s in plan_samples(load_study(study_file))}
    for variant in log.manifest["variants"]:
        got = {(r.task, r.item) for r in log.samples if r.variant == variant}
        if got != planned:
            raise FuzzFailure(f"resumed run: {variant} has {len(got)} of {len(planned)} items")
