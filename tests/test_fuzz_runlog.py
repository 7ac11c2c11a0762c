"""Fuzzed run logs (issue 17 item 4): a real fake-backend run folder damaged (flipped bytes,
cut, repeated, deleted and swapped lines, rows of another schema version, row type or run, a
damaged manifest.json), then one command on it: a correct result or one error line, never a
traceback, never damage to what was there. The cases are tests/fuzz_logs.py; the long
campaign is bench/campaign_fuzz.py."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from quantmatrix.cli import app
from quantmatrix.runlog import MANIFEST
from tests.fuzz_cases import fresh, lexical_scorer
from tests.fuzz_logs import COMMANDS, Files, check_log_case, damaged, make_template

TALLY: Counter[str] = Counter()  # how the cases ended (bench/campaign_fuzz.py prints it)
CASES = 6  # per command, 42 in all, 0.1-3 s each (2 busy cores); the campaign runs more
runner = CliRunner()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with lexical_scorer():
        yield make_template(tmp_path_factory.mktemp("template"))


@settings(
    max_examples=CASES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=damaged())
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_log_gives_a_correct_result_or_one_line(
    template: Path, tmp_path: Path, files: Files, command: str
) -> None:
    with lexical_scorer():
        check_log_case(template, files, command, fresh(tmp_path / "case"), TALLY)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ({"config": {"models": -3}}, "its study config does not parse (config.models: "),
        ({"variants": []}, "variants is not a mapping of names to entries"),
        ({"config_hash": None}, "config_hash is missing or not a string"),
    ],
)
def test_a_damaged_manifest_is_one_line_for_every_reader(
    template: Path, tmp_path: Path, damage: dict[str, object], reason: str
) -> None:
    """Found by the fuzzer: a manifest whose study config did not parse was a traceback."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(template, out)
    manifest = json.loads((out / MANIFEST).read_text())
    for key, value in damage.items():
        manifest[key] = {**manifest[key], **value} if isinstance(value, dict) else value
    (out / MANIFEST).write_text(json.dumps(manifest))
    study = template.parent / "study.yaml"
    for args in (
        ["report", str(out)],
        ["verify", str(out)],
        ["recommend", str(out)],
        ["run", str(study), "--out", str(out), "--quiet", "--cache", str(tmp_path / "c")],
    ):
        result = runner.invoke(app, args)
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert f"{out / MANIFEST} is damaged: {reason}" in lines[0]
    forced = ["run", str(study), "--out", str(out), "--quiet", "--force-new"]
    assert runner.invoke(app, [*forced, "--cache", str(tmp_path / "c")]).exit_code == 0
    assert len(list(out.glob("previous-*/manifest.json"))) == 1  # the damaged run moved aside


@pytest.mark.parametrize("key", ["variants", "sources"])
def test_a_manifest_without_its_file_mappings_is_filled_in_again_by_run(
    template: Path, tmp_path: Path, key: str
) -> None:
    """Found by the fuzzer in CI: a manifest.json without "variants" (a mapping readers may
    miss) made `run` stop with a KeyError traceback; the run records them again."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(template, out)
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest[key]
    (out / MANIFEST).write_text(json.dumps(manifest))
    study = template.parent / "study.yaml"
    args = ["run", str(study), "--out", str(out), "--quiet", "--cache", str(tmp_path / "c")]
    with lexical_scorer():
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert key in json.loads((out / MANIFEST).read_text())
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
