from __future__ import annotations

from pathlib import Path

import pytest

from quantmatrix.config import ConfigError, load_study, parse_study
from tests.conftest import fake_study_dict


def test_defaults_follow_the_published_study() -> None:
    study = parse_study(fake_study_dict())
    assert study.decoding.temperature == 0.0
    assert study.decoding.seed == 42
    assert study.decoding.max_new_tokens == 256
    assert study.warmup_runs == 1
    assert study.cost_per_hour == 0.035


def test_baseline_is_f16_when_present_else_highest_level() -> None:
    assert parse_study(fake_study_dict()).models[0].baseline_level == "F16"
    data = fake_study_dict()
    data["models"][0]["levels"] = ["Q4_K_M", "Q2_K", "Q8_0"]
    spec = parse_study(data).models[0]
    assert spec.baseline_level == "Q8_0"
    assert spec.ordered_levels == ["Q8_0", "Q4_K_M", "Q2_K"]


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"colour": 1}, "unknown field 'colour'"),
        ({"models": [{"name": "m", "source": "x", "levels": ["Q4_K_Z"]}]}, "unknown quant level"),
        (
            {"models": [{"name": "m", "source": "x", "levels": ["Q8_0"], "baseline": "F16"}]},
            "baseline 'F16' is not among its levels",
        ),
        ({"tasks": [{"kind": "mmlu", "per_subjet": 3}]}, "unknown field 'tasks.0.mmlu.per_subjet'"),
        ({"decoding": {"mc_scoring": "logits"}}, "decoding.mc_scoring"),
        (
            {
                "decoding": {"mc_scoring": "letters"},
                "models": [
                    {
                        "name": "s",
                        "source": "x",
                        "levels": ["Q8_0"],
                        "backend": "openai",
                        "endpoint": "http://127.0.0.1:9",
                        "tags": {"Q8_0": "s"},
                    }
                ],
            },
            "openai backend of 's' does not give",
        ),
    ],
)
def test_bad_config_gives_one_clear_line(patch: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_study(fake_study_dict(**patch))
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nmodels: [\n  - a: b\n")
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        load_study(path)


def test_config_hash_changes_with_content() -> None:
    a = parse_study(fake_study_dict())
    b = parse_study(fake_study_dict(warmup_runs=2))
    assert a.config_hash() != b.config_hash()
    assert a.config_hash() == parse_study(fake_study_dict()).config_hash()
