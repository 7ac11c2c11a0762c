"""Assemble the typed statistics section of a run (see ``build_statistics``).

The rows are put together as plain dicts here and validated into
:class:`~quantmatrix.analysis.stats.model.Statistics` once, at the end.

Its markdown rendering is the report's business: :mod:`quantmatrix.report.stats_md`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from quantmatrix.analysis.stats import describe, multiplicity, power, significance
from quantmatrix.analysis.stats.equivalence import (
    tost_paired_binary,
    tost_paired_bounded,
    tost_unpaired,
)
from quantmatrix.analysis.stats.inputs import ModelLadder, VariantOutcomes
from quantmatrix.analysis.stats.model import Statistics
from quantmatrix.analysis.stats.per_task import per_task

__all__ = [
    "ACCURACY",
    "ACCURACY_MARGINS",
    "METRIC_BOUND",
    "METRIC_MARGINS",
    "build_statistics",
    "jsonable",
]

ACCURACY = "accuracy"
ACCURACY_MARGINS: dict[str, float] = {"3pp": 0.03, "5pp": 0.05}  # absolute proportion
METRIC_MARGINS: dict[str, float] = {"3%": 0.03, "5%": 0.05}  # relative to the baseline mean
METRIC_BOUND = 1.0  # the generation metrics' scale (0-1): the pseudo-pairs of tost_paired_bounded
DESIGNS = ("paired", "unpaired")
POWER = 0.8


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples and numpy scalars to plain JSON types; NaN and inf become None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item"):
        return jsonable(value.item())
    number = float(value)
    return number if math.isfinite(number) else None


def _vectors(
    a: VariantOutcomes, b: VariantOutcomes, metric: str
) -> tuple[list[float], list[float]]:
    """Aligned values of ``metric`` (or 0/1 correctness) on the keys both variants share."""
    if metric == ACCURACY:
        keys = a.shared_keys(b)
        return a.correct_vector(keys), b.correct_vector(keys)
    keys = a.metric_keys(b, metric)
    return a.metric_vector(metric, keys), b.metric_vector(metric, keys)


def _wilson(variant: VariantOutcomes, alpha: float) -> dict[str, Any]:
    n, k = variant.n_items, variant.n_correct
    ci = describe.wilson_ci(k, n, alpha)
    return {
        "model": variant.model,
        "variant": variant.variant,
        "level": variant.level,
        "n": n,
        "correct": k,
        "accuracy": k / n if n else None,
        "low": ci[0] if ci else None,
        "high": ci[1] if ci else None,
    }


def _adjacent(hi: VariantOutcomes, lo: VariantOutcomes, metric: str) -> dict[str, Any]:
    a, b = _vectors(hi, lo, metric)
    welch = significance.welch_test(a, b)
    entry: dict[str, Any] = {
        "id": f"{hi.model}:{hi.level}->{lo.level}:{metric}",
        "model": hi.model,
        "higher": hi.level,
        "lower": lo.level,
        "metric": metric,
        "n_pairs": len(a),
        "diff": welch.diff,
        "welch": welch,
        "cohen_d": welch.cohen_d,
    }
    if metric == ACCURACY:
        mc = significance.mcnemar_test([x > 0.5 for x in a], [y > 0.5 for y in b])
        entry["paired"] = {
            "test": f"mcnemar ({mc.method})",
            "p_value": mc.p_value,
            "t_p_value": None,
        }
        entry["flips"] = {
            "correct_to_wrong": mc.correct_to_wrong,
            "wrong_to_correct": mc.wrong_to_correct,
        }
    else:
        pc = significance.paired_continuous(a, b)
        entry["paired"] = {
            "test": "wilcoxon",
            "p_value": pc.wilcoxon_p_value,
            "t_p_value": pc.t_p_value,
        }
        entry["flips"] = None
    return entry


def _family(entries: list[dict[str, Any]], key: str, alpha: float) -> dict[str, Any]:
    ids = [e["id"] for e in entries]
    raw = [float(e[key].p_value if key == "welch" else e[key]["p_value"]) for e in entries]
    corr = multiplicity.correct_pvalues(raw, alpha)
    rows = [
        {
            "id": ids[i],
            "p": raw[i],
            "p_bonferroni": corr.p_bonferroni[i],
            "p_holm": corr.p_holm[i],
            "survives_bonferroni": corr.survives_bonferroni[i],
            "survives_holm": corr.survives_holm[i],
        }
        for i in range(len(ids))
    ]
    return {
        "n_tests": corr.n_tests,
        "bonferroni_alpha": corr.bonferroni_alpha,
        "tests": rows,
        "survivors_bonferroni": [r["id"] for r in rows if r["survives_bonferroni"]],
        "survivors_holm": [r["id"] for r in rows if r["survives_holm"]],
    }


def _margins(metric: str, base_values: Sequence[float]) -> dict[str, float]:
    if metric == ACCURACY:
        return ACCURACY_MARGINS
    scale = abs(sum(base_values) / len(base_values)) if base_values else 0.0
    return {label: rel * scale for label, rel in METRIC_MARGINS.items()}


def _equivalence(
    base: VariantOutcomes, var: VariantOutcomes, metric: str, alpha: float
) -> list[dict[str, Any]]:
    a, b = _vectors(base, var, metric)
    rows: list[dict[str, Any]] = []
    for label, margin in _margins(metric, a).items():
        for design in DESIGNS:
            if design == "unpaired":
                res = tost_unpaired(a, b, margin, alpha)
            elif metric == ACCURACY:
                res = tost_paired_binary(a, b, margin, alpha)
            else:  # generation metrics are on a 0-1 scale
                res = tost_paired_bounded(a, b, margin, METRIC_BOUND, alpha)
            head = {"model": var.model, "variant": var.variant, "level": var.level}
            rows.append(
                {**head, "metric": metric, "margin_label": label, **dataclasses.asdict(res)}
            )
    return rows


def _ladder(ladder: ModelLadder, equivalence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    levels = [v.level for v in ladder.below_baseline()]
    mine = [r for r in equivalence if r["model"] == ladder.model]
    combos = sorted(
        {(r["metric"], r["margin_label"]) for r in mine}, key=lambda c: (c[0] != ACCURACY, c)
    )
    out: list[dict[str, Any]] = []
    for metric, label in combos:
        for design in DESIGNS:
            ok = {
                r["level"]: r["equivalent"]
                for r in mine
                if (r["metric"], r["margin_label"], r["design"]) == (metric, label, design)
            }
            seq = multiplicity.fixed_sequence(levels, [ok.get(level, False) for level in levels])
            head = {"model": ladder.model, "baseline": ladder.baseline, "metric": metric}
            out.append({**head, "margin_label": label, "design": design, **dataclasses.asdict(seq)})
    return out


def _power_model(ladder: ModelLadder, alpha: float) -> dict[str, Any]:
    base = ladder.baseline_variant
    n = base.n_items
    p = base.n_correct / n if n else None
    model_mde = power.mde_binary_unpaired(n, p, alpha, POWER) if p is not None else None
    return {
        "model": ladder.model,
        "baseline": base.level,
        "n": n,
        "baseline_accuracy": p,
        "mde_unpaired_worst_case": power.mde_binary_unpaired(n, 0.5, alpha, POWER),
        "mde_unpaired_model": model_mde,
    }


def _power_variant(base: VariantOutcomes, var: VariantOutcomes, alpha: float) -> dict[str, Any]:
    a, b = _vectors(base, var, ACCURACY)
    n = len(a)
    discordance = sum(1 for x, y in zip(a, b, strict=True) if x != y) / n if n else 0.0
    delta = (sum(b) - sum(a)) / n if n else 0.0
    margin = ACCURACY_MARGINS["3pp"]
    sd_u, sd_p = power.pooled_sd(a, b), power.sd_of_differences(a, b)
    metrics = []
    for metric in sorted(set(base.metrics) & set(var.metrics)):
        ma, mb = _vectors(base, var, metric)
        sd_mu, sd_mp = power.pooled_sd(ma, mb), power.sd_of_differences(ma, mb)
        metrics.append(
            {
                "metric": metric,
                "n": len(ma),
                "mde_unpaired": power.mde_continuous(len(ma), sd_mu or 0.0, alpha, POWER),
                "mde_paired": power.mde_continuous(len(ma), sd_mp or 0.0, alpha, POWER, True),
            }
        )
    return {
        "model": var.model,
        "variant": var.variant,
        "level": var.level,
        "n_pairs": n,
        "delta": delta,
        "discordance": discordance,
        "mde_paired": power.mde_binary_paired(n, discordance, alpha, POWER),
        "n_equivalence_3pp_paired": power.n_for_equivalence(
            delta, sd_p, margin, alpha, POWER, True
        ),
        "n_equivalence_3pp_unpaired": power.n_for_equivalence(delta, sd_u, margin, alpha, POWER),
        "metrics": metrics,
    }


def _bootstrap(base: VariantOutcomes, var: VariantOutcomes, seed: int) -> dict[str, Any]:
    a, b = _vectors(base, var, ACCURACY)
    res = describe.bootstrap_delta_ci(a, b, seed=seed)
    return {
        "model": var.model,
        "variant": var.variant,
        "level": var.level,
        **dataclasses.asdict(res),
    }


def _timing(variant: VariantOutcomes) -> dict[str, Any]:
    return {
        "model": variant.model,
        "variant": variant.variant,
        "level": variant.level,
        "ttft_s": describe.iqr_outliers(variant.ttft_s),
        "decode_tps": describe.iqr_outliers(variant.decode_tps),
    }


def _summary(equivalence: list[dict[str, Any]], n_variants: int) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {d: dict.fromkeys(ACCURACY_MARGINS, 0) for d in DESIGNS}
    for row in equivalence:
        if row["metric"] == ACCURACY and row["equivalent"]:
            counts[row["design"]][row["margin_label"]] += 1
    return {"variants_vs_baseline": n_variants, "accuracy_equivalent": counts}


def build_statistics(
    ladders: Sequence[ModelLadder], alpha: float = 0.05, seed: int = 42
) -> Statistics:
    """All statistics of a run (no NaN; None where undefined).

    Sections: wilson, adjacent, corrections, equivalence, ladder, power, bootstrap, timing,
    per_task (``per_task.py``), summary. Order follows the ladders as given; metric names are
    sorted.
    """
    wilson, adjacent, equivalence, ladder_rows, bootstrap, timing = [], [], [], [], [], []
    power_models, power_variants = [], []
    for ladder in ladders:
        wilson += [_wilson(v, alpha) for v in ladder.variants]
        timing += [_timing(v) for v in ladder.variants]
        metrics = [ACCURACY, *ladder.metric_names()]
        for hi, lo in ladder.adjacent_pairs():
            adjacent += [_adjacent(hi, lo, m) for m in metrics if m == ACCURACY or _has(hi, lo, m)]
        base = ladder.baseline_variant
        mine: list[dict[str, Any]] = []
        for var in ladder.below_baseline():
            for m in metrics:
                mine += (
                    _equivalence(base, var, m, alpha) if m == ACCURACY or _has(base, var, m) else []
                )
            power_variants.append(_power_variant(base, var, alpha))
            bootstrap.append(_bootstrap(base, var, seed))
        equivalence += mine
        ladder_rows += _ladder(ladder, mine)
        power_models.append(_power_model(ladder, alpha))
    corrections = {key: _family(adjacent, key, alpha) for key in ("welch", "paired")}
    n_variants = sum(len(ladder.below_baseline()) for ladder in ladders)
    result = {
        "alpha": alpha,
        "seed": seed,
        "power_target": POWER,
        "wilson": wilson,
        "adjacent": adjacent,
        "corrections": corrections,
        "equivalence": equivalence,
        "ladder": ladder_rows,
        "power": {"models": power_models, "variants": power_variants},
        "bootstrap": bootstrap,
        "timing": timing,
        "per_task": per_task(ladders, alpha),
        "summary": _summary(equivalence, n_variants),
    }
    return Statistics.model_validate(jsonable(result))


def _has(a: VariantOutcomes, b: VariantOutcomes, metric: str) -> bool:
    return bool(a.metric_keys(b, metric))
