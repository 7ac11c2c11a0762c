"""Speeds for the plan: the calibration table kept in the user cache, and a speeds file given by
the user (``quantmatrix plan STUDY --speeds speeds.yaml``).

The table (``<cache>/calibration/speeds.json``) maps a key to one measurement: a model file's
speeds by (file SHA-256, engine build, threads, batch, GPU layers), the quantizer's by (engine
build, threads, level). The engine build is named by the llama-cpp-python version and the CMake
arguments it was built with (``engine.build.cmake_args``), read without loading llama.cpp, so
``plan --no-calibrate`` finds earlier measurements on a machine without a working engine.

A speeds file (YAML) gives figures by hand, e.g. for server backends, which have no local file::

    variants:                       # model@LEVEL, or a model name for all its levels
      llama3.2-1b: {prompt_tps: 900, decode_tps: 60, load_s: 2}
      qwen-1.5b@Q8_0: {prompt_tps: 120, decode_tps: 11, batch: 4, batch_decode_tps: 18}
    quantize: {F16: 10, Q8_0: 12, Q4_K_M: 45}   # seconds per billion weights
    scoring: {load_s: 15, pair_s: 0.05}

Given figures take precedence over measured ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quantmatrix.config import ConfigError
from quantmatrix.plan.model import QuantSpeeds, ScoringCost, Speeds

TABLE = Path("calibration") / "speeds.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpeedsEntry(_Strict):
    prompt_tps: float = Field(gt=0)
    decode_tps: float = Field(gt=0)
    batch: int = Field(default=1, ge=1)
    batch_prompt_tps: float | None = Field(default=None, gt=0)
    batch_decode_tps: float | None = Field(default=None, gt=0)
    load_s: float = Field(default=0.0, ge=0)


class ScoringEntry(_Strict):
    load_s: float = Field(ge=0)
    pair_s: float = Field(ge=0)


class SpeedsFile(_Strict):
    variants: dict[str, SpeedsEntry] = Field(default_factory=dict)
    quantize: dict[str, float] = Field(default_factory=dict)
    scoring: ScoringEntry | None = None


def load_speeds_file(path: Path) -> SpeedsFile:
    """The user's speeds file, or a one-line ConfigError naming what is wrong."""
    if not path.is_file():
        raise ConfigError(f"speeds file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return SpeedsFile.model_validate(data)
    except yaml.YAMLError:
        raise ConfigError(f"{path}: malformed YAML; fix the syntax") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "speeds"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}: {where}: {msg} (see `quantmatrix plan --help`)") from None


def given_speeds(file: SpeedsFile, variant: str, model: str) -> Speeds | None:
    entry = file.variants.get(variant) or file.variants.get(model)
    if entry is None:
        return None
    return Speeds(**entry.model_dump(), basis="given", note="speeds file")


def given_quantize(file: SpeedsFile) -> QuantSpeeds | None:
    if not file.quantize:
        return None
    return QuantSpeeds(dict(file.quantize), basis="given", note="speeds file")


def given_scoring(file: SpeedsFile) -> ScoringCost | None:
    if file.scoring is None:
        return None
    return ScoringCost(file.scoring.load_s, file.scoring.pair_s, basis="given")


def engine_key() -> str:
    """The llama-cpp-python build, named without importing it (version + CMake arguments)."""
    from quantmatrix.engine.build import cmake_args

    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        version = "none"
    payload = f"{version}|{cmake_args() or ''}"
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def file_key(sha256: str, threads: int, batch: int, gpu_layers: int | None) -> str:
    return f"file|{sha256}|{engine_key()}|t{threads}|b{batch}|g{gpu_layers}"


def quantize_key(level: str, threads: int) -> str:
    return f"quantize|{level}|{engine_key()}|t{threads}"


class Table:
    """The calibration table of one cache folder, read once; ``put`` writes it atomically."""

    def __init__(self, cache: Path) -> None:
        self.path = cache / TABLE
        self.rows = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            rows = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return rows if isinstance(rows, dict) else {}

    def speeds(self, key: str) -> Speeds | None:
        row = self.rows.get(key)
        return None if row is None else Speeds(**row)

    def seconds(self, key: str) -> float | None:
        row = self.rows.get(key)
        return None if row is None else float(row["s_per_billion"])

    def put(self, key: str, value: Speeds | dict[str, Any]) -> None:
        """Add one row (to what is on disk now: another process may have added rows)."""
        self.rows = {**self.rows, **self._read()}
        self.rows[key] = asdict(value) if isinstance(value, Speeds) else value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"speeds.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.rows, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
