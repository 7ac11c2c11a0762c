"""The backend registry: a model's ``backend`` name -> its backend, heavy libraries imported
only when a backend is created, an unknown name refused with one line."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from quantmatrix.backends import registry
from quantmatrix.backends.base import BackendError
from quantmatrix.backends.fake import FakeBackend
from quantmatrix.config import ModelSpec, parse_study
from quantmatrix.models.ladder import Variant
from tests.conftest import fake_study_dict


def test_every_config_backend_name_is_registered() -> None:
    assert list(typing.get_args(ModelSpec.model_fields["backend"].annotation)) == registry.names()
    for name in registry.names():
        assert callable(registry.factory(name))


def test_unknown_backend_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(BackendError) as err:
        registry.factory("vllm")
    assert str(err.value) == (
        "unknown backend 'vllm'; known backends: llamacpp, ollama, openai, fake"
    )


def test_fake_backend_from_the_registry_is_salted_by_the_variant() -> None:
    study = parse_study(fake_study_dict())
    spec = study.models[0]
    answers = []
    for level in ("Q8_0", "Q4_K_M"):
        variant = Variant(spec.name, level, None, None, "fake", "fake", False)
        backend = registry.create("fake", variant, spec, study)
        assert isinstance(backend, FakeBackend) and backend.capabilities.letter_probs
        script = backend.script
        assert callable(script)
        answers.append([script(r) for r in _mc_requests()])
    assert answers[0] != answers[1]


def _mc_requests() -> list[typing.Any]:
    from quantmatrix.backends.base import GenerationRequest

    prompts = [f"Q{i}?\nA. x\nB. y\nC. z\nD. w\nAnswer:" for i in range(12)]
    return [GenerationRequest(f"k{i}", p, max_tokens=4) for i, p in enumerate(prompts)]


def test_looking_up_imports_no_heavy_library() -> None:
    code = (
        "import sys, quantmatrix.pipeline\n"
        "from quantmatrix.backends import registry\n"
        "registry.names(); registry.factory('fake')\n"
        "print(sorted(m for m in ('llama_cpp', 'httpx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
