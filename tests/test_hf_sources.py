"""hf: spellings and the Hub's answers (against the local stand-in): one line for each refusal."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantmatrix.engine.tiny_model import write_tiny_llama
from quantmatrix.models.sources import SourceError, resolve_source
from quantmatrix.models.spelling import SpellingError, parse_hub
from tests.hub_standin import HubStandIn, Repo


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny-F16.gguf")


@pytest.fixture
def hub(tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandIn]:
    readme = tmp_path / "README.md"
    readme.write_text("a model card and nothing else\n")
    config = tmp_path / "config.json"
    config.write_text('{"architectures": ["LlamaForCausalLM"]}')
    standin = HubStandIn(
        {
            "org/gguf-only": Repo(
                {"tiny-Q8_0.gguf": tiny_gguf, "tiny-F16.gguf": tiny_gguf, "README.md": readme}
            ),
            "org/card-only": Repo({"README.md": readme}),
            "org/gated": Repo(
                {"config.json": config, "model.safetensors": tiny_gguf}, gated_token="hf_secret"
            ),
        }
    ).start()
    monkeypatch.setenv("HF_ENDPOINT", standin.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)  # and no token is stored on test machines
    yield standin
    standin.stop()


@pytest.mark.parametrize(
    ("source", "repo", "revision", "file"),
    [
        ("hf:Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", None, None),
        ("hf:org/model@v1.0", "org/model", "v1.0", None),
        ("hf:org/model-GGUF:model-q4_k_m.gguf", "org/model-GGUF", None, "model-q4_k_m.gguf"),
        ("hf:org/model-GGUF@abc123:Q4_K_M", "org/model-GGUF", "abc123", "Q4_K_M"),
    ],
)
def test_hf_spellings_parse(source: str, repo: str, revision: str | None, file: str) -> None:
    parsed = parse_hub(source)
    assert (parsed.repo, parsed.revision, parsed.file) == (repo, revision, file)
    assert parsed.spelling == source


@pytest.mark.parametrize("source", ["hf:", "hf:model", "hf:a/b/c", "hf:org/m@", "hf:org/m:a:b"])
def test_unknown_hf_forms_are_refused_with_the_forms(source: str, tmp_path: Path) -> None:
    with pytest.raises(SpellingError, match="hf:ORG/REPO"):
        parse_hub(source)
    with pytest.raises(SourceError) as info:
        resolve_source("m", source, tmp_path)
    assert "\n" not in str(info.value) and "model 'm'" in str(info.value)


def test_a_gguf_is_picked_by_level_and_recorded(hub: HubStandIn, tmp_path: Path) -> None:
    source = resolve_source("m", "hf:org/gguf-only:Q8_0", tmp_path / "cache")
    assert source.kind == "hf-gguf" and source.path.name == "tiny-Q8_0.gguf"
    assert source.provenance["commit"] == hub.repos["org/gguf-only"].commit
    assert source.provenance["files"] == {"tiny-Q8_0.gguf": source.sha256}
    assert source.original  # an F16 file: the original precision, as far as the file tells
    again = resolve_source("m", "hf:org/gguf-only@main:tiny-Q8_0.gguf", tmp_path / "cache")
    assert again.path.resolve() == source.path.resolve()


def _one_line_error(source: str, cache: Path) -> str:
    with pytest.raises(SourceError) as info:
        resolve_source("m", source, cache)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_refusals_are_one_line_each(hub: HubStandIn, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert "GGUF files but no safetensors" in _one_line_error("hf:org/gguf-only", cache)
    assert "hf:org/gguf-only:F16" in _one_line_error("hf:org/gguf-only", cache)
    assert "neither safetensors nor GGUF" in _one_line_error("hf:org/card-only", cache)
    assert "gated" in _one_line_error("hf:org/gated", cache)
    assert "HF_TOKEN" in _one_line_error("hf:org/gated", cache)
    assert "revision 'v9' not found" in _one_line_error("hf:org/gguf-only@v9:Q8_0", cache)
    assert "repository not found" in _one_line_error("hf:org/nope", cache)
    assert "no GGUF file matches Q2_K" in _one_line_error("hf:org/gguf-only:Q2_K", cache)
    assert not list((tmp_path / "hub-cache").rglob("*.incomplete"))
    assert not (cache / "converted").exists()


def test_a_gated_repo_downloads_with_its_token(
    hub: HubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    from quantmatrix.models.hub import fetch

    got = fetch(parse_hub("hf:org/gated"))
    assert set(got.files) == {"config.json", "model.safetensors"}


def test_no_network_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    message = _one_line_error("hf:org/model", tmp_path / "cache")
    assert "cannot reach" in message and "no network" in message


def test_offline_the_cached_revision_is_used(hub: HubStandIn, tmp_path: Path) -> None:
    first = resolve_source("m", "hf:org/gguf-only:Q8_0", tmp_path / "cache")
    hub.stop()  # the Hub is gone: the cache answers
    again = resolve_source("m", "hf:org/gguf-only:Q8_0", tmp_path / "cache")
    assert again.path.resolve() == first.path.resolve()
    assert again.provenance["commit"] == first.provenance["commit"]
    message = _one_line_error("hf:org/gguf-only:F16", tmp_path / "cache")
    assert "offline" in message and "F16" in message


def _folder(path: Path, dtype: str, config: dict[str, object]) -> Path:
    import json

    import torch
    from safetensors.torch import save_file

    path.mkdir()
    kind = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}[dtype]
    save_file({"w": torch.zeros(256, 256, dtype=kind)}, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_a_folder_is_read_from_its_files(tmp_path: Path) -> None:
    from quantmatrix.models.safetensors_folder import FolderError, read_folder

    arch = {"architectures": ["LlamaForCausalLM"]}
    bf16 = read_folder(_folder(tmp_path / "bf16", "BF16", arch), None)
    assert bf16.dtype == "BF16" and bf16.outtype == "bf16" and bf16.quantized is None
    assert set(bf16.file_sha256) == {"config.json", "model.safetensors"}
    f32 = read_folder(_folder(tmp_path / "f32", "F32", arch), None)
    assert f32.outtype == "f16"
    gptq = {**arch, "quantization_config": {"quant_method": "gptq", "bits": 4}}
    assert read_folder(_folder(tmp_path / "gptq", "F16", gptq), None).quantized == "gptq"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FolderError, match=r"no config\.json"):
        read_folder(tmp_path / "empty", None)
    message = _one_line_error(str(tmp_path / "empty"), tmp_path / "cache")
    assert "no config.json" in message
