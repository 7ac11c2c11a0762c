"""What ``make_plan`` reads, gathered: the cache's facts, then speeds (given > cached calibration
> a calibration run now > scaled from a measured level of the same model, or from its source
file when no level is built yet).

Nothing here writes into a run folder. A calibration run (unless ``calibrate=False``) writes
only into the user cache: the calibration table, and a packaged model assembled from its
installed packages (as ``quantmatrix run`` would assemble it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from quantmatrix.config import ModelSpec, Study
from quantmatrix.levels import check_level
from quantmatrix.models.sources import PACKAGED, missing_packages, resolve_source
from quantmatrix.plan import speeds as sp
from quantmatrix.plan.calibrate import calibrate_file, calibrate_quantizer
from quantmatrix.plan.facts import level_file, model_facts, source_file
from quantmatrix.plan.model import Inputs, LevelFacts, ModelFacts, QuantSpeeds, Speeds
from quantmatrix.plan.scale import fill_scaled

Say = Callable[[str], None]


@dataclass(frozen=True)
class GatherOptions:
    cache: Path
    calibrate: bool = True
    speeds_file: Path | None = None
    recalibrate: bool = False  # measure again what the table already holds


@dataclass(frozen=True)
class _Meter:
    """Speeds of files from the calibration table, measured now when missing and allowed."""

    table: sp.Table
    calibrate: bool
    threads: int
    say: Say
    again: bool = False

    def speeds(
        self, path: Path, digest: str, label: str, batch: int, gpu: int | None
    ) -> Speeds | None:
        key = sp.file_key(digest, self.threads, batch, gpu)
        measured = None if self.again else self.table.speeds(key)
        if measured is None and self.calibrate:
            threads = f"{self.threads} thread" + ("s" if self.threads != 1 else "")
            self.say(f"calibrating {label} ({path.name}, {threads}, batch {batch})")
            measured = calibrate_file(path, self.threads, batch, gpu)
            self.table.put(key, measured)
        return measured


def gather(study: Study, options: GatherOptions, say: Say = lambda _: None) -> Inputs:
    """The facts and speeds for ``make_plan``; calibrates what is missing when allowed."""
    threads = study.threads or os.cpu_count() or 1
    given = sp.load_speeds_file(options.speeds_file) if options.speeds_file else sp.SpeedsFile()
    table = sp.Table(options.cache)
    if options.calibrate:
        _assemble_packaged(study, options.cache, say)
    facts = {m.name: model_facts(m, study, options.cache, threads) for m in study.models}
    meter = _Meter(table, options.calibrate, threads, say, options.recalibrate)
    speeds: dict[str, Speeds] = {}
    for spec in study.models:
        found = _level_speeds(spec, study, options.cache, given, meter)
        extra: tuple[LevelFacts, ...] = ()
        if not found:  # no level's file yet: measure the source, scale the levels from it
            found, extra = _source_speeds(spec, study, facts[spec.name], options.cache, meter)
        speeds = fill_scaled(facts[spec.name].levels, spec.name, speeds | found, extra)
    quantize = sp.given_quantize(given) or _quantize(study, facts, meter)
    return Inputs(facts, speeds, quantize, sp.given_scoring(given), threads)


def _assemble_packaged(study: Study, cache: Path, say: Say) -> None:
    for spec in study.models:
        model = PACKAGED.get(spec.source)
        if spec.backend != "llamacpp" or model is None or missing_packages(model):
            continue
        if len(model.dists) > 1 and not (cache / "models" / f"{model.short_name}.gguf").exists():
            say(f"assembling {model.short_name} from its packages (for the calibration)")
        resolve_source(spec.name, spec.source, cache)


def _batch(spec: ModelSpec, study: Study) -> int:
    return study.batch_size if spec.backend == "llamacpp" else 1


def _level_speeds(
    spec: ModelSpec, study: Study, cache: Path, given: sp.SpeedsFile, meter: _Meter
) -> dict[str, Speeds]:
    out: dict[str, Speeds] = {}
    for level in spec.ordered_levels:
        vid = f"{spec.name}@{level}"
        hand = sp.given_speeds(given, vid, spec.name)
        found = None if hand else level_file(spec, level, study, cache, meter.threads)
        measured = None
        if found is not None:
            path, digest = found
            batch, gpu = _batch(spec, study), study.gpu_layers_for(spec)
            measured = meter.speeds(path, digest, vid, batch, gpu)
        chosen = hand or measured
        if chosen is not None:
            out[vid] = chosen
    return out


def _source_speeds(
    spec: ModelSpec, study: Study, facts: ModelFacts, cache: Path, meter: _Meter
) -> tuple[dict[str, Speeds], tuple[LevelFacts, ...]]:
    """The source file's speeds under its own type's name, as the reference for scaling."""
    found = source_file(spec, cache)
    if found is None or facts.source_size is None:
        return {}, ()
    path, digest, file_type = found
    label = f"{spec.name} source ({file_type})"
    measured = meter.speeds(path, digest, label, _batch(spec, study), study.gpu_layers_for(spec))
    if measured is None:
        return {}, ()
    return {f"{spec.name}@{file_type}": measured}, (LevelFacts(file_type, True, facts.source_size),)


def _quantize(study: Study, facts: dict[str, ModelFacts], meter: _Meter) -> QuantSpeeds | None:
    """The quantizer's speed for every level some model must still build."""
    wanted: set[str] = set()
    for spec in study.models:
        f = facts[spec.name]
        missing = [lv.level for lv in f.levels if not lv.present and not lv.is_source]
        if spec.backend == "llamacpp" and missing:
            wanted |= {check_level(lv).base for lv in missing}
            if not f.float_parent_present:
                wanted.add("F16")
    if not wanted:
        return QuantSpeeds({}, "measured", "nothing to build")
    known = {
        lv: None if meter.again else meter.table.seconds(sp.quantize_key(lv, meter.threads))
        for lv in sorted(wanted)
    }
    todo = [lv for lv, s in known.items() if s is None]
    if todo and meter.calibrate:
        meter.say(f"calibrating the quantizer ({', '.join(todo)}; {meter.threads} threads)")
        load = os.getloadavg()[0]
        for level, seconds in calibrate_quantizer(todo, meter.threads).items():
            row = {"s_per_billion": seconds, "loadavg": load}
            meter.table.put(sp.quantize_key(level, meter.threads), row)
            known[level] = seconds
    have = {lv: s for lv, s in known.items() if s is not None}
    return QuantSpeeds(have, "measured", "calibration table") if have else None
