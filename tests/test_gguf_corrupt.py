"""Corrupt GGUF files (issue 17 item 4): bad magic, a truncated header, truncated tensor data,
a wrong tensor count and more, given as a model source and as a cached ladder file. Each is
one line naming the file, found by ``models/gguf_info.read_info`` before llama.cpp opens it.
The files are cut from the tests' tiny real GGUF (``engine/tiny_model.py``, written by gguf's
own writer; no engine runs here: llama.cpp is made to fail the test if it is called)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from quantmatrix.cli import app
from quantmatrix.models.gguf_info import GGUFError, read_info
from quantmatrix.models.ladder import ladder_dir
from quantmatrix.models.sources import resolve_source
from quantmatrix.pipeline import run as pipeline_run
from tests.tiny_model import write_tiny_llama

runner = CliRunner()
Corruption = Callable[[bytes], bytes]


def tensor_info_at(data: bytes, name: str) -> int:
    """Where the tensor table entry of ``name`` starts (its name's length prefix)."""
    raw = name.encode()
    at = data.find(struct.pack("<Q", len(raw)) + raw)
    assert at > 0, name
    return at


def type_field(data: bytes, name: str) -> int:
    at = tensor_info_at(data, name) + 8 + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    return at + 4 + 8 * n_dims


def with_u32(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack("<I", value) + data[at + 4 :]


def with_u64(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack("<Q", value) + data[at + 8 :]


def tensors(data: bytes) -> int:
    count: int = struct.unpack_from("<Q", data, 8)[0]
    return count


LAST = "blk.1.ffn_down.weight"  # the tiny model's last tensor
CORRUPTIONS: dict[str, tuple[Corruption, str]] = {
    "bad magic": (lambda d: b"GGML" + d[4:], "is not a GGUF file (magic b'GGML'"),
    "empty file": (lambda d: b"", "is not a GGUF file (magic b''"),
    "truncated header": (lambda d: d[:4096], "is truncated or corrupt"),
    "header cut in the tensor table": (
        lambda d: d[: tensor_info_at(d, LAST) + 10],
        "is truncated or corrupt",
    ),
    "truncated tensor data": (lambda d: d[:-1000], "is truncated ("),
    "tensor count one too many": (
        lambda d: with_u64(d, 8, tensors(d) + 1),
        "is truncated or corrupt",
    ),
    "tensor count one too few": (
        lambda d: with_u64(d, 8, tensors(d) - 1),
        "a wrong tensor count, or bytes appended",
    ),
    "tensor count huge": (lambda d: with_u64(d, 8, 2**62), "the header declares a tensor count"),
    "key-value count huge": (lambda d: with_u64(d, 16, 2**40), "declares a key-value count"),
    "unknown version": (lambda d: with_u32(d, 4, 99), "GGUF version 99"),
    "unknown tensor type": (
        lambda d: with_u32(d, type_field(d, LAST), 250),
        f"tensor '{LAST}' has unknown type 250",
    ),
    "tensor offset flipped": (
        lambda d: with_u64(d, type_field(d, LAST) + 4, 64),
        f"tensor '{LAST}' starts at data offset 64",
    ),
    "bytes appended": (lambda d: d + b"\0" * 4096, "4096 bytes follow the data of its 21"),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-f16.gguf")


@pytest.fixture(scope="module")
def tiny_bytes(tiny: Path) -> bytes:
    return tiny.read_bytes()


@pytest.fixture(autouse=True)
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks come before llama.cpp: any call into it fails the test."""
    import llama_cpp

    def called(*args: object, **kwargs: object) -> None:
        raise AssertionError("a corrupt file reached llama.cpp")

    monkeypatch.setattr(llama_cpp.Llama, "__init__", called)
    monkeypatch.setattr(llama_cpp, "llama_model_quantize", called)
    # no engine probe (it quantizes its own tiny model): run.py holds its own reference
    monkeypatch.setattr(pipeline_run, "record_environment", lambda *a, **k: None)


def one_line(output: str) -> str:
    assert "Traceback" not in output
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_read_info_names_the_file_and_what_is_wrong(
    tiny_bytes: bytes, tmp_path: Path, case: str
) -> None:
    corrupt, reason = CORRUPTIONS[case]
    path = tmp_path / "bad.gguf"
    path.write_bytes(corrupt(tiny_bytes))
    with pytest.raises(GGUFError) as err:
        read_info(path)
    assert str(err.value).startswith(str(path)) and reason in str(err.value)
    assert "\n" not in str(err.value)


def test_intact_files_pass(tiny: Path) -> None:
    from tests.tiny_model import smollm2_path

    for path in (tiny, smollm2_path()):
        assert read_info(path).n_params > 0


def study(tmp_path: Path, source: Path, levels: list[str]) -> Path:
    path = tmp_path / "study.yaml"
    data = {
        "models": [{"name": "tiny", "source": str(source), "levels": levels}],
        "tasks": [{"kind": "arc_challenge", "n": 2}],
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("case", ["truncated header", "tensor count one too few", "bad magic"])
def test_a_corrupt_model_source_is_one_line(tiny_bytes: bytes, tmp_path: Path, case: str) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(CORRUPTIONS[case][0](tiny_bytes))
    args = ["--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"), "--quiet"]
    result = runner.invoke(app, ["run", str(study(tmp_path, source, ["F16"])), *args])
    assert result.exit_code == 2
    line = one_line(result.output)
    assert line.startswith(f"error: model 'tiny': {source} ") and CORRUPTIONS[case][1] in line


@pytest.mark.parametrize("case", ["truncated tensor data", "tensor count one too many"])
def test_a_corrupt_cached_ladder_file_is_one_line(
    tiny: Path, tiny_bytes: bytes, tmp_path: Path, case: str
) -> None:
    cache = tmp_path / "cache"
    cached = ladder_dir(cache, resolve_source("tiny", str(tiny), cache)) / "Q8_0.gguf"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(CORRUPTIONS[case][0](tiny_bytes))
    args = ["--out", str(tmp_path / "run"), "--cache", str(cache), "--quiet"]
    result = runner.invoke(app, ["run", str(study(tmp_path, tiny, ["F16", "Q8_0"])), *args])
    assert result.exit_code == 2
    line = one_line(result.output)
    assert line.startswith(f"error: {cached} ") and CORRUPTIONS[case][1] in line
    assert line.endswith(
        "it is a cached level: delete it and rerun, and quantmatrix builds it again"
    )


def test_quantize_refuses_a_corrupt_file_before_llama_cpp(
    tiny_bytes: bytes, tmp_path: Path
) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(CORRUPTIONS["tensor offset flipped"][0](tiny_bytes))
    result = runner.invoke(
        app, ["quantize", str(source), "--levels", "Q8_0", "--out", str(tmp_path / "q")]
    )
    assert result.exit_code == 2 and f"error: {source} is truncated or corrupt" in one_line(
        result.output
    )


def write_small_gguf(path: Path) -> Path:
    """A 17 kB GGUF by gguf's own writer: string and float arrays, F32, F16 and Q8_0 tensors."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("small")
    writer.add_block_count(1)
    writer.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(200)])
    writer.add_array("tokenizer.ggml.scores", [float(i) for i in range(200)])
    writer.add_tensor("a.weight", rng.standard_normal((32, 64)).astype(np.float32))
    writer.add_tensor("b.weight", rng.standard_normal((8, 256)).astype(np.float16))
    q8 = gguf.quants.quantize(
        rng.standard_normal((4, 256)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0
    )
    writer.add_tensor("c.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("d.weight", rng.standard_normal((3,)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def small_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = write_small_gguf(tmp_path_factory.mktemp("small") / "small.gguf")
    assert read_info(path).n_params == 32 * 64 + 8 * 256 + 4 * 256 + 3
    return path.read_bytes()


FLIPS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def check_mangled(small: bytes, data: st.DataObject, work: Path) -> str:
    """Bytes of the header and tensor table overwritten, the file cut anywhere or bytes
    appended: read_info accepts it (a flip inside a string value, say) or raises GGUFError
    naming the file in one line, never anything else. 'accepted' or 'refused'."""
    header = tensor_info_at(small, "d.weight") + 40
    raw = bytearray(small)
    for at in data.draw(st.lists(st.integers(0, header), max_size=4)):
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(raw))))
    tail = data.draw(st.binary(max_size=64))
    path = work / "mangled.gguf"
    path.write_bytes(bytes(raw[:cut]) + tail)
    try:
        read_info(path)
    except GGUFError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        return "refused"
    return "accepted"


@FLIPS
@given(data=st.data())
def test_mangled_files_are_accepted_or_one_gguf_error(
    small_bytes: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    check_mangled(small_bytes, data, tmp_path)
