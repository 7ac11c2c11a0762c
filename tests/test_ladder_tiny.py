"""The quant ladder on a tiny random-weight F16 llama (256-aligned: no k-quant fallbacks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantmatrix.models.gguf_info import GGUFError, read_info
from quantmatrix.models.ladder import build_ladder_files, build_level
from quantmatrix.models.sources import SourceError, resolve_source
from tests.tiny_model import write_tiny_llama

pytestmark = pytest.mark.engine

LADDER = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_S", "Q2_K"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-f16.gguf")


def test_full_ladder_from_an_f16_source(tiny: Path, tmp_path: Path) -> None:
    source = resolve_source("tiny", str(tiny), tmp_path)
    assert source.info.file_type == "F16" and not source.packaged
    variants = [build_level(source, level, tmp_path, 2) for level in LADDER]
    infos = [v.info for v in variants if v.info is not None]
    assert [i.file_type for i in infos] == LADDER
    bits = [i.bits_per_weight for i in infos]
    assert bits == sorted(bits, reverse=True)  # every step down is smaller
    assert variants[0].path == tiny  # F16 is the source itself, not a copy
    assert not any(v.reconstructed for v in variants)
    q4 = infos[LADDER.index("Q4_K_M")]
    assert "Q4_K" in q4.tensor_types and "Q5_0" not in q4.tensor_types  # no fallbacks
    assert 4.4 < q4.bits_per_weight < 5.6


def test_quantize_command_writes_named_files(tiny: Path, tmp_path: Path) -> None:
    built = build_ladder_files(tiny, ["Q8_0", "Q4_K_M"], tmp_path)
    assert [p.name for p, _ in built] == ["tiny-f16-Q8_0.gguf", "tiny-f16-Q4_K_M.gguf"]
    assert [i.file_type for _, i in built] == ["Q8_0", "Q4_K_M"]


def test_bad_model_files_give_one_clear_line(tiny: Path, tmp_path: Path) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(SourceError, match="is not a GGUF file"):
        resolve_source("m", str(not_gguf), tmp_path)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny.read_bytes()[: tiny.stat().st_size // 2])
    with pytest.raises(SourceError, match="truncated"):
        resolve_source("m", str(cut), tmp_path)
    with pytest.raises(GGUFError, match="not found"):
        read_info(tmp_path / "missing.gguf")
    with pytest.raises(SourceError, match="neither a file nor a demo model"):
        resolve_source("m", str(tmp_path / "missing.gguf"), tmp_path)
