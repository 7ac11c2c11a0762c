"""Every example study parses, the built-in presets match their examples, and the published
study for Ollama users names what was published."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from quantmatrix.config import load_study

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_parses(path: Path) -> None:
    study = load_study(path)
    assert study.models and study.tasks


@pytest.mark.parametrize("name", ["demo", "tiny"])
def test_a_preset_is_its_example_byte_for_byte(name: str) -> None:
    preset = resources.files("quantmatrix") / "presets" / f"{name}.yaml"
    assert preset.read_bytes() == (EXAMPLES / f"{name}.yaml").read_bytes()


def test_the_published_study_for_ollama() -> None:
    study = load_study(EXAMPLES / "tr125-ollama.yaml")
    ladder = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_S", "Q2_K"]
    got = {m.name: (m.backend, m.ordered_levels, m.baseline_level) for m in study.models}
    assert got == {
        "llama3.2-1b": ("ollama", ladder, "F16"),
        "qwen2.5-1.5b": ("ollama", ladder, "F16"),
        "phi-2": ("ollama", ladder, "F16"),
        "qwen2.5-7b": ("ollama", ladder, "F16"),
        "llama3.1-8b": ("ollama", ladder[1:], "Q8_0"),
    }
    tags = {m.name: m.server_model("Q4_K_M") for m in study.models}
    assert tags == {
        "llama3.2-1b": "llama3.2:1b-instruct-q4_K_M",
        "qwen2.5-1.5b": "qwen2.5:1.5b-instruct-q4_K_M",
        "phi-2": "phi:2.7b-chat-v2-q4_K_M",
        "qwen2.5-7b": "qwen2.5:7b-instruct-q4_K_M",
        "llama3.1-8b": "llama3.1:8b-instruct-q4_K_M",
    }
    assert study.models[0].server_model("F16") == "llama3.2:1b-instruct-fp16"
    kinds = {t.kind: t for t in study.tasks}
    assert kinds["mmlu"].per_subject == 5  # type: ignore[union-attr]
    assert kinds["arc_challenge"].n == 200  # type: ignore[union-attr]
    text = (EXAMPLES / "tr125-ollama.yaml").read_text()
    assert "microsoft/deberta-xlarge-mnli" in text
