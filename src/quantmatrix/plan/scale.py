"""Speeds for levels not measured yet (their files are not built): from a measured level of the
same model, decoding scaled by file size (decoding reads every weight once per token), prompt
evaluation taken as it is (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from quantmatrix.levels import check_level
from quantmatrix.plan.model import LevelFacts, Speeds


def fill_scaled(
    levels: Sequence[LevelFacts],
    model: str,
    speeds: dict[str, Speeds],
    extra: Sequence[LevelFacts] = (),
) -> dict[str, Speeds]:
    """``speeds`` with every level of ``model`` that lacks one scaled from the known level
    nearest in nominal bits (``extra``: more known files, e.g. the source when it is no listed
    level); levels of unknown size, or of a model with none known, stay out."""
    out = dict(speeds)
    known = [lv for lv in (*levels, *extra) if f"{model}@{lv.level}" in speeds and lv.size_bytes]
    for lv in levels:
        vid = f"{model}@{lv.level}"
        if vid in out or not lv.size_bytes or not known:
            continue
        bits = check_level(lv.level).bits
        ref = min(known, key=lambda k: abs(check_level(k.level).bits - bits))
        assert ref.size_bytes is not None
        out[vid] = scale(speeds[f"{model}@{ref.level}"], ref.size_bytes / lv.size_bytes, ref.level)
    return out


def scale(sp: Speeds, ratio: float, ref_level: str) -> Speeds:
    """``sp`` for a file ``1 / ratio`` times the size of the reference level's."""
    return replace(
        sp,
        decode_tps=sp.decode_tps * ratio,
        batch_decode_tps=sp.batch_decode_tps * ratio if sp.batch_decode_tps else None,
        load_s=sp.load_s / ratio,
        basis="scaled",
        note=f"from {ref_level}",
    )
