"""Render ``build_statistics``'s section as a deterministic markdown "## Statistics" section."""

from __future__ import annotations

from quantmatrix.analysis.stats.model import EquivalenceRow, Statistics
from quantmatrix.report.fmt import MISSING, count, num, pp, pvalue, signed, table, yes_no


def _wilson(stats: Statistics) -> list[str]:
    rows = [
        [
            w.model,
            w.level,
            str(w.n),
            str(w.correct),
            num(w.accuracy, 3),
            f"[{num(w.low, 3)}, {num(w.high, 3)}]",
        ]
        for w in stats.wilson
    ]
    head = ["Model", "Level", "N", "Correct", "Accuracy", "Wilson 95% CI"]
    return ["### Accuracy", "", table(head, rows), ""]


def _tests(stats: Statistics) -> list[str]:
    welch = {r.id: r for r in stats.corrections["welch"].tests}
    paired = {r.id: r for r in stats.corrections["paired"].tests}
    rows = []
    for e in stats.adjacent:
        w, p = welch[e.id], paired[e.id]
        flips = e.flips
        flip = f"{flips.correct_to_wrong}/{flips.wrong_to_correct}" if flips else MISSING
        rows.append(
            [
                e.model,
                f"{e.higher}→{e.lower}",
                e.metric,
                num(e.diff, 4),
                num(e.cohen_d, 3),
                pvalue(w.p),
                pvalue(w.p_holm),
                pvalue(w.p_bonferroni),
                yes_no(w.survives_holm),
                e.paired.test,
                pvalue(p.p),
                pvalue(p.p_holm),
                pvalue(p.p_bonferroni),
                yes_no(p.survives_holm),
                flip,
            ]
        )
    head = ["Model", "Step", "Metric", "Δ", "d", "Welch p", "Holm", "Bonf.", "Survives"]
    head += ["Paired test", "p", "Holm", "Bonf.", "Survives", "Flips c→w/w→c"]
    fam = stats.corrections["welch"]
    note = f"{fam.n_tests} adjacent tests per family; Bonferroni per-test alpha "
    note += f"{num(fam.bonferroni_alpha, 6)}. Survives = Holm-adjusted p < {stats.alpha}."
    return ["### Adjacent-level tests", "", note, "", table(head, rows), ""]


def _equivalence(stats: Statistics) -> list[str]:
    grouped: dict[tuple[str, str, str, str], dict[str, EquivalenceRow]] = {}
    for r in stats.equivalence:
        key = (r.model, r.level, r.metric, r.margin_label)
        grouped.setdefault(key, {})[r.design] = r
    rows = []
    for (model, level, metric, label), by in grouped.items():
        pa, un = by["paired"], by["unpaired"]
        rows.append(
            [
                model,
                level,
                metric,
                f"±{label}",
                num(pa.delta, 4),
                pvalue(pa.p_value),
                yes_no(pa.equivalent),
                pvalue(un.p_value),
                yes_no(un.equivalent),
            ]
        )
    head = ["Model", "Level", "Metric", "Margin", "Δ vs baseline", "Paired TOST p", "Equiv."]
    head += ["Unpaired TOST p", "Equiv."]
    note = (
        "Paired TOST on accuracy uses the Bonett-Price adjusted Wald interval (one pseudo-flip "
        "each way); on generation metrics (0-1 scale) one pseudo-pair at +1 and -1 joins the "
        "per-item differences, so identical outputs on a few items cannot confirm equivalence "
        "from zero variance alone. Unpaired: Welch TOST."
    )
    return ["### Equivalence to baseline (TOST)", "", note, "", table(head, rows), ""]


def _ladder(stats: Statistics) -> list[str]:
    rows = [
        [
            r.model,
            r.metric,
            f"±{r.margin_label}",
            r.design,
            r.lowest_confirmed or f"none below {r.baseline}",
            r.stopped_at or MISSING,
        ]
        for r in stats.ladder
    ]
    head = ["Model", "Metric", "Margin", "Design", "Lowest confirmed level", "Stopped at"]
    return ["### Fixed-sequence ladder", "", table(head, rows), ""]


def _power(stats: Statistics) -> list[str]:
    models = [
        [
            m.model,
            m.baseline,
            str(m.n),
            num(m.baseline_accuracy, 3),
            pp(m.mde_unpaired_worst_case, False),
            pp(m.mde_unpaired_model, False),
        ]
        for m in stats.power.models
    ]
    variants = [
        [
            v.model,
            v.level,
            str(v.n_pairs),
            pp(v.delta),
            num(v.discordance, 3),
            pp(v.mde_paired, False),
            count(v.n_equivalence_3pp_paired),
            count(v.n_equivalence_3pp_unpaired),
        ]
        for v in stats.power.variants
    ]
    target = f"alpha {stats.alpha}, power {stats.power_target}"
    head_m = ["Model", "Baseline", "N", "Accuracy", "MDE unpaired (p=0.5)", "MDE unpaired (p)"]
    head_v = ["Model", "Level", "Pairs", "Δ", "Discordance", "MDE paired"]
    head_v += ["N for ±3pp paired", "N for ±3pp unpaired"]
    intro = f"Minimum detectable effects at {target}."
    return ["### Power", "", intro, "", table(head_m, models), "", table(head_v, variants), ""]


def _bootstrap(stats: Statistics) -> list[str]:
    rows = [
        [b.model, b.level, pp(b.delta), f"[{pp(b.low)}, {pp(b.high)}]"] for b in stats.bootstrap
    ]
    resamples = stats.bootstrap[0].n_resamples if stats.bootstrap else 0
    note = f"Paired percentile bootstrap over items ({resamples} resamples, "
    note += f"seed {stats.seed})."
    return [
        "### Bootstrap",
        "",
        note,
        "",
        table(["Model", "Level", "Δ accuracy", "95% CI"], rows),
        "",
    ]


def _timing(stats: Statistics) -> list[str]:
    rows = []
    for t in stats.timing:
        for series, s in (("ttft_s", t.ttft_s), ("decode_tps", t.decode_tps)):
            rows.append(
                [
                    t.model,
                    t.level,
                    series,
                    str(s.n),
                    num(s.median, 3),
                    num(s.cv, 3),
                    str(len(s.outliers)),
                ]
            )
    head = ["Model", "Level", "Series", "N", "Median", "CV", "IQR outliers (k=1.5)"]
    return ["### Timing", "", table(head, rows), ""]


def _interval(low: float | None, high: float | None, unit: str) -> str:
    if low is None or high is None:
        return MISSING
    return f"[{signed(low)}{unit}, {signed(high)}{unit}]"


def _per_task(stats: Statistics) -> list[str]:
    rows = []
    for t in stats.per_task.tests:
        unit = "pp" if t.kind == "benchmark" else "%"
        flips = t.flips
        rows.append(
            [
                t.model,
                t.level,
                t.kind,
                t.task,
                str(t.n),
                MISSING if t.change is None else f"{signed(t.change)}{unit}",
                _interval(t.low, t.high, unit),
                t.test,
                pvalue(t.p_value),
                pvalue(t.p_holm),
                yes_no(t.survives_holm),
                f"{flips.correct_to_wrong}/{flips.wrong_to_correct}" if flips else MISSING,
            ]
        )
    head = ["Model", "Level", "Kind", "Task", "N", "Δ vs baseline", "Paired 95% CI", "Test"]
    head += ["p", "Holm", "Survives", "Flips c→w/w→c"]
    note = "Each variant vs its baseline on each task's items. Benchmark: accuracy change "
    note += "(Newcombe paired interval); generation: key average % change (delta method). "
    note += stats.per_task.families
    out = ["### Per task", "", note, "", table(head, rows), ""]
    return out + _differential(stats)


def _differential(stats: Statistics) -> list[str]:
    found = stats.per_task.differential
    if not found:
        return ["No MMLU-vs-ARC differential: the run lacks one of the two benchmarks.", ""]
    rows = [
        [
            d.model,
            d.level,
            f"{signed(d.change_a)}pp ({d.n_a})",
            f"{signed(d.change_b)}pp ({d.n_b})",
            f"{signed(d.diff)}pp",
            _interval(d.low, d.high, "pp"),
            num(d.z, 2),
            pvalue(d.p_value),
            pvalue(d.p_holm),
            yes_no(d.survives_holm),
        ]
        for d in found
    ]
    head = ["Model", "Level", f"Δ {found[0].task_a} (N)", f"Δ {found[0].task_b} (N)"]
    head += ["Difference", "95% CI", "z", "p", "Holm", "Survives"]
    note = "Does the drop differ between the benchmarks? The two changes are independent "
    note += "(different items): z test of their difference, each with the Bonett-Price "
    note += "adjusted paired variance."
    return ["### MMLU vs ARC differential", "", note, "", table(head, rows), ""]


def _summary(stats: Statistics) -> list[str]:
    s = stats.summary
    counts = s.accuracy_equivalent
    parts = [
        f"{design} " + ", ".join(f"{n} at ±{label}" for label, n in counts[design].items())
        for design in ("paired", "unpaired")
    ]
    line = "Variants confirmed equivalent to baseline on accuracy "
    line += f"(TOST, of {s.variants_vs_baseline} tested): "
    return [line + "; ".join(parts) + ".", ""]


def render_statistics_md(stats: Statistics) -> str:
    """Markdown "## Statistics" section; pure formatting, so equal input gives equal bytes."""
    lines = ["## Statistics", "", *_summary(stats)]
    parts = (_wilson, _tests, _per_task, _equivalence, _ladder, _power, _bootstrap, _timing)
    for part in parts:
        lines += part(stats)
    return "\n".join(lines).rstrip() + "\n"
