"""hf: source end to end against the stand-in Hub: download -> llama.cpp's converter -> F16 ->
Q8_0 / Q4_K_M -> a tiny study whose report calls its baseline the original F16 weights."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from quantmatrix.models.sources import SourceError, resolve_source
from quantmatrix.runlog import VARIANTS, read_rows
from tests.hf_tiny import write_tiny_hf_llama
from tests.hub_standin import HubStandIn, Repo

pytestmark = [pytest.mark.engine, pytest.mark.slow]

REPO = "quantmatrix-tests/tiny-llama"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_hf_llama(tmp_path_factory.mktemp("hf") / "tiny-llama")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def hub(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    standin = HubStandIn({REPO: Repo(files)}).start()
    env = {"HF_ENDPOINT": standin.url, "HF_HUB_CACHE": str(tmp_path_factory.mktemp("hub"))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    standin.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _study(folder: Path) -> Path:
    data = {
        "name": "hf-tiny",
        "models": [{"name": "tiny", "source": f"hf:{REPO}@main", "levels": ["F16", "Q8_0",
                                                                           "Q4_K_M"]}],
        "tasks": [{"kind": "mmlu", "per_subject": None, "n": 4}, {"kind": "arc_challenge", "n": 2}],
        "warmup_runs": 1,
        "threads": 2,
        "context_length": 512,
        "divergence": {"corpus_tokens": 128, "chunk_tokens": 64},
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_hf_source_runs_end_to_end(
    hub: dict[str, str], folder: Path, cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "quantmatrix", "run", str(_study(tmp_path)), "--out", str(out),
           "--cache", str(cache), "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = (out / "report.md").read_text()
    assert "**Baseline of tiny: the original F16 weights**" in report
    assert f"hf:{REPO}@main" in report
    assert "reconstruction" not in report.split("## ")[0]
    manifest = json.loads((out / "manifest.json").read_text())
    src = manifest["sources"]["tiny"]
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert src["kind"] == "hf-safetensors" and src["repo"] == REPO and src["revision"] == "main"
    assert len(src["commit"]) == 40 and src["files"]["model.safetensors"] == weights
    assert src["converter"]["llama-cpp-python"] == metadata.version("llama-cpp-python")
    assert src["file_type"] == "F16" and src["weights_dtype"] == "F16"
    origins = {r["level"]: r["origin"] for r in read_rows(out / VARIANTS).rows}
    assert origins == {"F16": "original", "Q8_0": "quantized", "Q4_K_M": "quantized"}
    variants = manifest["variants"]
    assert variants["tiny@F16"]["sha256"] == src["sha256"]  # F16 is the converter's own file


def test_a_local_folder_converts_to_the_same_cached_file(
    hub: dict[str, str], folder: Path, cache: Path
) -> None:
    from_hub = resolve_source("tiny", f"hf:{REPO}", cache)
    local = resolve_source("tiny", str(folder), cache)
    assert local.kind == "safetensors" and local.path == from_hub.path
    assert local.sha256 == from_hub.sha256 and local.original


def test_an_unsupported_architecture_is_the_converters_own_line(tmp_path: Path) -> None:
    odd = write_tiny_hf_llama(tmp_path / "odd", architecture="NoSuchModelForCausalLM")
    cache = tmp_path / "cache"
    with pytest.raises(SourceError) as info:
        resolve_source("odd", str(odd), cache)
    message = str(info.value)
    assert "\n" not in message and "NoSuchModelForCausalLM" in message
    assert "not supported" in message
    assert not list((cache / "converted").rglob("*.gguf"))
    assert not list((cache / "converted").rglob("*.partial"))
