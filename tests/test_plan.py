"""``quantmatrix plan`` on fake-backend and server studies: counts, the time model, downloads
and builds, the speeds file, and that it writes nothing where a run would."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from quantmatrix.cli import app
from quantmatrix.config import ConfigError, parse_study
from quantmatrix.engine.tiny_model import write_tiny_llama
from quantmatrix.models.ladder import ladder_dir
from quantmatrix.models.sources import resolve_source
from quantmatrix.plan import GatherOptions, gather, make_plan, render
from quantmatrix.plan.estimate import MC_REPLY_TOKENS, WARMUP_TOKENS
from quantmatrix.plan.model import Inputs, LevelFacts, ModelFacts, QuantSpeeds, Speeds
from quantmatrix.plan.resolution import betting_halfwidth_pp, fixed_halfwidth_pp, items_for
from quantmatrix.plan.scale import fill_scaled
from quantmatrix.plan.speeds import SpeedsEntry, SpeedsFile, Table, given_speeds, load_speeds_file
from quantmatrix.tasks.plan import plan_samples
from tests.conftest import fake_study_dict

runner = CliRunner()
SPEEDS = {"prompt_tps": 100.0, "decode_tps": 10.0, "load_s": 1.0}


def _plan_of(data: dict[str, Any], speeds: dict[str, Any], cache: Path) -> Any:
    study = parse_study(data)
    path = cache.parent / "speeds.yaml"
    path.write_text(yaml.safe_dump({"variants": speeds}))
    inputs = gather(study, GatherOptions(cache, calibrate=False, speeds_file=path))
    return study, make_plan(study, plan_samples(study), inputs)


def _per_item(chars: float, new: float, sp: dict[str, float]) -> float:
    return (chars / 4.0) / sp["prompt_tps"] + new / sp["decode_tps"]  # 4 chars/token default


def _load(sp: dict[str, float], warmups: int) -> float:
    prompt, new = WARMUP_TOKENS
    return sp["load_s"] + warmups * (prompt / sp["prompt_tps"] + new / sp["decode_tps"])


def test_fixed_counts_are_exact_and_the_evaluation_follows_the_time_model(cache: Path) -> None:
    study, plan = _plan_of(fake_study_dict(), {"m": SPEEDS}, cache)
    mc = [s for s in plan_samples(study) if s.kind == "multiple_choice"]
    assert [v.mc for v in plan.variants] == [(18, 18)] * 3
    assert [v.variant for v in plan.variants] == ["m@F16", "m@Q8_0", "m@Q4_K_M"]
    mean_chars = sum(len(s.prompt) for s in mc) / len(mc)
    one = 18 * _per_item(mean_chars, MC_REPLY_TOKENS, SPEEDS) + _load(SPEEDS, 1)
    assert plan.variants[0].eval_s.low == pytest.approx(one)
    evaluation = next(p for p in plan.phases if p.name == "evaluation")
    assert evaluation.seconds.low == evaluation.seconds.high == pytest.approx(3 * one)
    assert plan.samples[0].startswith("multiple choice: 54 samples")


def test_adaptive_sampling_gives_a_range_of_items_and_loads(cache: Path) -> None:
    sampling = {"mode": "adaptive", "min_items": 10, "max_items": 18, "round": 4}
    study, plan = _plan_of(fake_study_dict(sampling=sampling), {"m": SPEEDS}, cache)
    assert study.sampling.looks(18) == [10, 14, 18]
    assert all(v.mc == (10, 18) for v in plan.variants)
    assert plan.samples[0].startswith("multiple choice: 30 to 54 samples")
    mc = [s for s in plan_samples(study) if s.kind == "multiple_choice"]
    item = _per_item(sum(len(s.prompt) for s in mc) / len(mc), MC_REPLY_TOKENS, SPEEDS)
    ev = plan.variants[1].eval_s
    assert ev.low == pytest.approx(10 * item + 1 * _load(SPEEDS, 1))
    assert ev.high == pytest.approx(18 * item + 3 * _load(SPEEDS, 1))  # one load per round


def test_missing_speeds_leave_the_eta_unknown_but_the_counts_exact(cache: Path) -> None:
    _, plan = _plan_of(fake_study_dict(), {}, cache)
    assert all(v.speeds is None and v.eval_s.high is None for v in plan.variants)
    assert plan.total.high is None
    text = "\n".join(render(plan))
    assert "total       unknown" in text and "multiple choice: 54 samples" in text


def test_a_variant_entry_overrides_its_models_entry() -> None:
    file = SpeedsFile(variants={"m": SpeedsEntry(prompt_tps=1, decode_tps=2),
                                "m@Q8_0": SpeedsEntry(prompt_tps=5, decode_tps=6)})  # fmt: skip
    assert given_speeds(file, "m@F16", "m").decode_tps == 2  # type: ignore[union-attr]
    assert given_speeds(file, "m@Q8_0", "m").decode_tps == 6  # type: ignore[union-attr]
    assert given_speeds(file, "other@Q8_0", "other") is None


def test_resolution_matches_the_normal_interval_and_the_betting_sequence_is_wider() -> None:
    z = stats.norm.ppf(1 - 0.05 / 2)
    assert fixed_halfwidth_pp(100, 0.05, 0.2) == pytest.approx(100 * z * math.sqrt(0.2 / 100))
    for h in (3.0, 5.0, 10.0):
        n = items_for(h, 0.05, 0.2)
        assert fixed_halfwidth_pp(n, 0.05, 0.2) <= h < fixed_halfwidth_pp(n - 1, 0.05, 0.2)
    widths = [betting_halfwidth_pp(n, 0.05, 400, 0.2) for n in (50, 100, 200, 400)]
    assert widths == sorted(widths, reverse=True)
    assert all(b > fixed_halfwidth_pp(n, 0.05, 0.2)
               for b, n in zip(widths, (50, 100, 200, 400), strict=True))  # fmt: skip


def test_the_plan_says_what_one_question_is_worth(cache: Path) -> None:
    _, plan = _plan_of(fake_study_dict(), {"m": SPEEDS}, cache)
    assert plan.resolution[0] == (
        "18 multiple-choice items per variant: one question moves accuracy by 5.6pp"
    )


def test_ollama_tags_are_listed_as_pulled_by_the_server(cache: Path) -> None:
    model = {"name": "l1b", "backend": "ollama", "source": "llama3.2:1b-instruct",
             "levels": ["F16", "Q4_K_M"]}  # fmt: skip
    _, plan = _plan_of(fake_study_dict(models=[model]), {}, cache)
    assert plan.downloads == (
        "l1b: Ollama tags llama3.2:1b-instruct-fp16, llama3.2:1b-instruct-q4_K_M (pulled by the "
        "server if missing)",
    )
    assert plan.builds == ()
    assert next(p for p in plan.phases if p.name == "KL").seconds.high == 0.0  # no local file


def test_a_hub_repo_outside_the_hub_cache_is_a_download(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = {"name": "q", "source": "hf:Qwen/Qwen2.5-1.5B-Instruct", "levels": ["F16", "Q4_K_M"]}
    _, plan = _plan_of(fake_study_dict(models=[model]), {}, cache)
    assert plan.downloads[0].startswith("q: hf:Qwen/Qwen2.5-1.5B-Instruct from the Hugging Face")
    assert "not in the Hugging Face cache" in plan.downloads[0]
    assert any("convert to GGUF" in b for b in plan.builds)


def test_local_levels_to_build_and_the_ladder_eta(cache: Path, tmp_path: Path) -> None:
    source = write_tiny_llama(tmp_path / "tiny-F16.gguf")
    model = {"name": "t", "source": str(source), "levels": ["F16", "Q8_0", "Q4_K_M"]}
    data = fake_study_dict(models=[model])
    speeds = tmp_path / "speeds.yaml"
    speeds.write_text(yaml.safe_dump({"quantize": {"Q8_0": 10.0, "Q4_K_M": 20.0}}))
    study = parse_study(data)
    options = GatherOptions(cache, calibrate=False, speeds_file=speeds)
    plan = make_plan(study, plan_samples(study), gather(study, options))
    billions = resolve_source("t", str(source), cache).info.n_params / 1e9
    assert plan.builds == ("t: Q8_0, Q4_K_M",)
    assert plan.phases[0].seconds.high == pytest.approx(30.0 * billions)
    assert plan.variants[0].file.startswith("on disk")  # the source file itself
    built = ladder_dir(cache, resolve_source("t", str(source), cache)) / "Q8_0.gguf"
    built.parent.mkdir(parents=True)
    built.write_bytes(b"GGUF")  # where the ladder phase keeps it: now there
    plan = make_plan(study, plan_samples(study), gather(study, options))
    assert plan.builds == ("t: Q4_K_M",)
    assert plan.phases[0].seconds.high == pytest.approx(20.0 * billions)
    assert plan.variants[1].file == "on disk, 0.00 GB"


def _facts(levels: list[LevelFacts], **over: Any) -> ModelFacts:
    base: dict[str, Any] = {"name": "q", "backend": "llamacpp", "source_kind": "packaged",
                            "source_type": "Q4_K_M", "n_params": 2_000_000_000}  # fmt: skip
    return ModelFacts(**{**base, **over}, levels=tuple(levels))


def test_a_quantized_source_builds_its_f16_first_even_when_not_evaluated() -> None:
    model = {"name": "q", "source": "x.gguf", "levels": ["Q8_0", "Q4_K_M"]}  # no file: pure
    study = parse_study(fake_study_dict(models=[model]))
    facts = _facts([LevelFacts("Q8_0", False, 2_100_000_000),
                    LevelFacts("Q4_K_M", True, 1_100_000_000, is_source=True)],
                   float_parent_present=False)  # fmt: skip
    inputs = Inputs({"q": facts}, {}, QuantSpeeds({"F16": 5.0, "Q8_0": 8.0}))
    plan = make_plan(study, plan_samples(study), inputs)
    assert plan.builds == ("q: F16 (parent of the lower levels, not evaluated), Q8_0",)
    assert plan.phases[0].seconds.high == pytest.approx(2.0 * (5.0 + 8.0))


def test_unmeasured_levels_are_scaled_by_file_size_from_the_nearest_measured_one() -> None:
    levels = [LevelFacts("F16", False, 4000), LevelFacts("Q8_0", True, 2000),
              LevelFacts("Q2_K", False, 500)]  # fmt: skip
    measured = Speeds(prompt_tps=80, decode_tps=10, batch=4, batch_decode_tps=20, load_s=2.0,
                      basis="measured")  # fmt: skip
    out = fill_scaled(levels, "q", {"q@Q8_0": measured})
    assert out["q@F16"].decode_tps == pytest.approx(5.0)
    assert out["q@F16"].batch_decode_tps == pytest.approx(10.0)
    assert out["q@F16"].load_s == pytest.approx(4.0)
    assert out["q@Q2_K"].decode_tps == pytest.approx(40.0)
    assert out["q@Q2_K"].prompt_tps == 80 and out["q@Q2_K"].basis == "scaled"
    assert out["q@Q8_0"] is measured


def test_the_calibration_table_keeps_rows_another_process_wrote(cache: Path) -> None:
    one, two = Table(cache), Table(cache)
    one.put("a", Speeds(prompt_tps=1, decode_tps=2, basis="measured"))
    two.put("b", {"s_per_billion": 3.0})
    again = Table(cache)
    assert again.speeds("a") == Speeds(prompt_tps=1, decode_tps=2, basis="measured")
    assert again.seconds("b") == 3.0


def _write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_plan_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    study = _write(tmp_path / "s.yaml", fake_study_dict())
    speeds = _write(tmp_path / "speeds.yaml", {"variants": {"m": SPEEDS}})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = runner.invoke(app, ["plan", str(study), "--no-calibrate", "--speeds", str(speeds),
                                 "--cache", str(tmp_path / "cache")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "m@F16 *" in result.output and "ETA:" in result.output
    assert "one question moves accuracy by 5.6pp" in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["plan"], "give a study file"),
        (["plan", "nope.yaml"], "study file not found"),
        (["plan", "{study}", "--speeds", "nope.yaml"], "speeds file not found"),
        (["plan", "{study}", "--speeds", "{bad}"], "variants.m.decode_tps"),
        (["plan", "{study}", "--recalibrate"], "not both"),
    ],
)
def test_cli_plan_bad_input_is_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    study = _write(tmp_path / "s.yaml", fake_study_dict())
    bad = _write(tmp_path / "bad.yaml", {"variants": {"m": {"prompt_tps": 1, "decode_tps": -1}}})
    argv = [a.format(study=study, bad=bad) for a in args] + ["--no-calibrate"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines


def test_a_speeds_file_with_an_unknown_field_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.yaml", {"variant": {}})
    with pytest.raises(ConfigError, match="variant"):
        load_speeds_file(path)


def test_run_prints_the_sizes_and_their_resolution_first(tmp_path: Path) -> None:
    study = _write(tmp_path / "s.yaml", fake_study_dict())
    result = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("study fake: 12 mmlu + 6 arc_challenge multiple-choice items")
    assert lines[1] == "18 multiple-choice items per variant: one question moves accuracy by 5.6pp"


def test_a_missing_importance_matrix_is_a_build_whose_time_is_unknown() -> None:
    model = {"name": "q", "source": "x.gguf", "levels": ["F16", "Q4_K_M-imat"]}  # no file: pure
    study = parse_study(fake_study_dict(models=[model]))
    facts = _facts([LevelFacts("F16", True, 4_000_000_000, is_source=True),
                    LevelFacts("Q4_K_M-imat", False, 1_100_000_000)],
                   source_type="F16", imatrix_present=False)  # fmt: skip
    plan = make_plan(
        study, plan_samples(study), Inputs({"q": facts}, {}, QuantSpeeds({"Q4_K_M": 9.0}))
    )
    assert plan.builds == ("q: Q4_K_M-imat, importance matrix (llama-imatrix, time not estimated)",)
    assert plan.phases[0].seconds.high is None
