"""Disk faults on a real file system: a small tmpfs that fills up, then is remounted read-only.

Run as root (it mounts): ``python bench/campaign_disk.py [--size 48k]``. Each step runs the
real command line in a child process on a fake-backend study (tests/conftest.py's) and checks
what issue 17 item 3 asks: one line on stderr, a non-zero exit, no traceback, the rows already
written intact (``verify`` clean), no half-written report file, and a rerun after space is
freed that resumes and completes. Prints one line per step and exits non-zero if any fails.
The same faults are injected in CI by tests/test_disk_faults.py (no root needed there).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import fake_study_dict  # noqa: E402

from quantmatrix.runlog import SAMPLES, read_rows  # noqa: E402
from quantmatrix.runlog.lock import LOCK  # noqa: E402

PLANNED = 3 * 18
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "quantmatrix", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, check=False)


def mount(mnt: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)], check=True)


def remount(mnt: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mnt)], check=True)


def one_line(done: subprocess.CompletedProcess[str], starts: str) -> str | None:
    """None if ``done`` is one error line starting with ``starts`` and a non-zero exit."""
    lines = [ln for ln in done.stderr.splitlines() + done.stdout.splitlines() if ln.strip()]
    if done.returncode == 0 or "Traceback" in done.stderr:
        return f"exit {done.returncode}, {len(lines)} lines: {lines[-3:]}"
    if len(lines) != 1 or not lines[0].startswith(starts):
        return f"expected one line starting {starts!r}, got {lines}"
    print(f"    {lines[0]} (exit {done.returncode})")
    return None


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def verify_clean(out: Path) -> str | None:
    done = cli("verify", str(out))
    return None if done.returncode == 0 else f"verify: {done.stdout[-300:]}{done.stderr[-300:]}"


def full_while_logging(mnt: Path, study: Path, size: str) -> str | None:
    out = mnt / "run"
    mount(mnt, f"size={size}")
    problem = one_line(
        cli("run", str(study), "--out", str(out), "--quiet"), "error: no space left on device"
    )
    kept = read_rows(out / SAMPLES)
    if problem or kept.problems or not 0 < len(kept.rows) < PLANNED or (out / LOCK).exists():
        return problem or f"rows {len(kept.rows)}, problems {kept.problems}, lock left"
    print(f"    disk full after {len(kept.rows)} of {PLANNED} rows: {(out / SAMPLES).name} kept")
    if problem := verify_clean(out):
        return problem
    remount(mnt, "size=4m")  # space freed
    done = cli("run", str(study), "--out", str(out), "--quiet")
    if done.returncode != 0 or f"reused {len(kept.rows)}" not in done.stderr + done.stdout:
        return f"rerun: exit {done.returncode}: {done.stderr[-300:]}"
    rows = read_rows(out / SAMPLES).rows
    return verify_clean(out) or (None if len(rows) == PLANNED else f"{len(rows)} rows")


def full_while_reporting(mnt: Path, study: Path, size: str) -> str | None:
    out = mnt / "run"
    free = int(os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize)
    filler = mnt / "filler"
    filler.write_bytes(b"\0" * max(free - 64 * 1024, 0))  # leave 64 KiB: less than a report
    (out / "report.md").write_text("the previous report\n")
    before = snapshot(out)
    problem = one_line(cli("report", str(out)), "error: no space left on device")
    after = snapshot(out)
    filler.unlink()
    if problem:
        return problem
    if sorted(after) != sorted(before) or after["report.md"] != before["report.md"]:
        return f"report files changed or left over: {sorted(set(after) ^ set(before))}"
    done = cli("report", str(out))
    return None if done.returncode == 0 else f"report after freeing: {done.stderr[-300:]}"


def read_only(mnt: Path, study: Path, size: str) -> str | None:
    out = mnt / "run"
    before = snapshot(out)
    remount(mnt, "ro")
    try:
        for args in (
            ("run", str(study), "--out", str(out), "--quiet"),
            ("report", str(out)),
            ("verify", "--repair", str(out)),
        ):
            if problem := one_line(cli(*args), "error: read-only file system while writing"):
                return f"{args[0]}: {problem}"
        for args in (("verify", str(out)), ("recommend", str(out))):
            if (done := cli(*args)).returncode != 0:
                return f"{args[0]} on a read-only folder: {done.stderr[-300:]}"
        if snapshot(out) != before:
            return "the read-only folder changed"
    finally:
        remount(mnt, "rw")
    done = cli("run", str(study), "--out", str(out), "--quiet")
    return None if done.returncode == 0 else f"run after remount rw: {done.stderr[-300:]}"


STEPS: list[tuple[str, Callable[[Path, Path, str], str | None]]] = [
    ("tmpfs full while logging samples; rerun after freeing space", full_while_logging),
    ("tmpfs full while writing the report; old files whole", full_while_reporting),
    ("tmpfs remounted read-only: run, report, verify --repair refused", read_only),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="48k", help="the tmpfs's size at first")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (mount); tests/test_disk_faults.py injects the same faults")
        return 2
    work = Path(tempfile.mkdtemp(prefix="quantmatrix-disk-"))
    study, mnt = work / "study.yaml", work / "mnt"
    study.write_text(yaml.safe_dump(fake_study_dict()))
    mnt.mkdir()
    failures = 0
    try:
        for name, step in STEPS:
            problem = step(mnt, study, args.size)
            failures += problem is not None
            verdict = "ok  " if problem is None else "FAIL"
            print(f"{verdict} {name}" + (f": {problem}" if problem else ""))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    print(f"{len(STEPS)} steps, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
