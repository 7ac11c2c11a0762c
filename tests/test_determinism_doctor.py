"""``quantmatrix doctor --determinism`` (the engine, on the probe's tiny model) and
``doctor --server URL --server-model M`` (a server at temperature 0, here the Ollama stand-in,
steady or switched to answer nondeterministically, on its native and OpenAI-compatible APIs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from quantmatrix.backends.server_probe import probe_server_determinism, render_lines
from quantmatrix.cli import app
from quantmatrix.engine import determinism as engine_det
from tests.ollama_standin import OllamaStandIn

TAG = "tiny:q4_K_M"


@pytest.fixture
def standin() -> Iterator[OllamaStandIn]:
    server = OllamaStandIn(models={TAG: 300_000_000}).start()
    yield server
    server.stop()


def doctor(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", "--no-probe", *args])
    return result.exit_code, result.output


def test_a_steady_server_is_deterministic(standin: OllamaStandIn) -> None:
    found = probe_server_determinism("ollama", standin.url, TAG)
    assert found.deterministic and len(found.prompts) == 3
    mc = [p for p in found.prompts if p.key.startswith("mc")]
    assert all(p.same_letters is True and p.letters_max_abs_diff == 0.0 for p in mc)
    assert len(standin.bodies("/api/chat")) == 6  # every prompt, through two clients
    code, out = doctor("--server", standin.url, "--server-model", TAG)
    assert code == 0 and "server determinism: deterministic at temperature 0" in out
    body = standin.bodies("/api/chat")[0]
    assert body["options"]["temperature"] == 0.0 and body["options"]["top_k"] == 1


def test_an_unsteady_server_is_told_how_it_differed(standin: OllamaStandIn) -> None:
    standin.unsteady = True
    found = probe_server_determinism("ollama", standin.url, TAG)
    assert not found.deterministic
    by_key = {p.key: p for p in found.prompts}
    assert by_key["open"].same_output is False and by_key["open"].again.endswith(" again")
    assert by_key["mc-0"].same_output is True and by_key["mc-0"].same_letters is False
    lines = render_lines(found)
    assert lines[0].startswith("server determinism: NOT deterministic")
    assert any("open: text differs" in ln for ln in lines)
    assert any("mc-0: same text, letter probabilities differ by up to" in ln for ln in lines)
    code, out = doctor("--json", "--server", standin.url, "--server-model", TAG)
    assert code == 0 and json.loads(out)["server_determinism"]["deterministic"] is False


def test_an_openai_compatible_server_and_bad_input(standin: OllamaStandIn) -> None:
    found = probe_server_determinism("openai", f"{standin.url}/v1", TAG)
    assert found.deterministic and all(p.same_letters is None for p in found.prompts)
    standin.unsteady = True
    assert not probe_server_determinism("openai", f"{standin.url}/v1", TAG).deterministic
    code, out = doctor("--server", standin.url, "--server-model", "nope:7b")
    assert code == 2 and "has no model 'nope:7b'" in out and "ollama pull" in out
    assert len(out.strip().splitlines()) == 1
    code, out = doctor("--server", standin.url)
    assert code == 2 and "--server-model" in out
    code, out = doctor("--server", standin.url, "--server-model", TAG, "--server-kind", "vllm")
    assert code == 2 and "unknown server kind 'vllm'" in out


def test_the_engine_verdict_names_what_differed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison without the engine: passes at 1 thread get other logits (and, for one
    prompt, another token)."""
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((engine_det.DECODE_TOKENS, 8)).astype(np.float32)
    base = engine_det.Answer(tuple(int(i) for i in rows.argmax(1)), rows)
    calls: list[int] = []

    def fake_answers(path: Path, threads: int, engine: object) -> list[engine_det.Answer]:
        calls.append(threads)
        if threads == 2:
            return [base] * engine_det.PROMPTS
        nudged = engine_det.Answer(base.tokens, rows + np.float32(1e-3))
        other = engine_det.Answer((base.tokens[0] + 1, *base.tokens[1:]), rows)
        return [nudged, other, base]

    monkeypatch.setattr(engine_det, "answer_all", fake_answers)
    monkeypatch.setattr("quantmatrix.engine.probe.probe_models", lambda c, n: {"Q8_0": c})
    monkeypatch.setattr("quantmatrix.engine.settings.machine_settings", lambda **_: None)
    found = engine_det.probe_engine_determinism(Path("/nowhere"), threads=2)
    assert calls == [2, 2, 1] and not found.deterministic
    same, other = found.repeats
    assert same.same and (other.same_tokens, other.same_logits) == (False, False)
    assert other.max_abs_diff == pytest.approx(1e-3, rel=1e-3)
    lines = engine_det.render_lines(found)
    assert lines[0].startswith("engine determinism: NOT deterministic")
    assert lines[1] == "  Q8_0 at 1 threads vs 2: other tokens"


@pytest.mark.engine
def test_the_engine_here_is_deterministic_across_contexts_and_threads(tmp_path: Path) -> None:
    found = engine_det.probe_engine_determinism(tmp_path, threads=2)
    assert [(r.level, r.threads) for r in found.repeats] == [
        ("Q8_0", 2), ("Q8_0", 1), ("Q4_K_M", 2), ("Q4_K_M", 1),
    ]  # fmt: skip
    assert found.deterministic, found.as_dict()
    assert all(r.max_abs_diff == 0.0 for r in found.repeats)


@pytest.mark.engine
@pytest.mark.slow
def test_llama_cpp_server_is_deterministic_at_temperature_0(tmp_path: Path) -> None:
    """A real OpenAI-compatible server (``python -m llama_cpp.server``, SmolLM2-135M)."""
    from quantmatrix.models.sources import resolve_source
    from tests.test_openai_backend import LlamaServer, free_port

    model = resolve_source("smollm2-135m-instruct", "smollm2-135m-instruct").path
    server = LlamaServer(model, free_port(), tmp_path / "server.log")
    server.start()
    try:
        found = probe_server_determinism("openai", server.url, "smollm2")
    finally:
        server.kill()
    assert all(p.first for p in found.prompts)  # real answers, not empty ones
    assert found.deterministic, found.as_dict()
