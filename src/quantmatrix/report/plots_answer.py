"""The plots of the answer across models: the memory/quality frontier, each model's tier
ladder with its certified bands, and the answers lost and gained per level. Drawn from the
decision alone, like every plot (``report/plots.py`` registers them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from quantmatrix.decide import TIER_BOUNDS_BENCH, TIERS
from quantmatrix.decision.model import Decision, VariantRow
from quantmatrix.report.plot_kit import (
    DPI,
    MARKERS,
    TIER_COLORS,
    color,
    level_rank,
    model_color,
    models_of,
    no_data,
    panels,
)


def _known(rows: Sequence[VariantRow]) -> list[tuple[VariantRow, float, float]]:
    """(row, memory GB, accuracy %) where both are known."""
    return [
        (r, float(r.memory_bytes) / 1e9, 100.0 * r.accuracy)
        for r in rows
        if r.memory_bytes is not None and r.accuracy is not None
    ]


def plot_frontier(decision: Decision) -> Figure:
    """Accuracy (95% Wilson CI) against memory, one colour per model, the memory Pareto front
    dashed, the answer's budgets dotted."""
    pts = _known(decision.variants)
    fig = Figure(figsize=(9, 6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    if not pts:
        no_data(ax, "memory and accuracy")
        return fig
    for i, model in enumerate(models_of([r for r, _, _ in pts])):
        mine = sorted((p for p in pts if p[0].model == model), key=lambda p: p[1])
        xs, ys = [x for _, x, _ in mine], [y for _, _, y in mine]
        lo = [
            max(0.0, y - 100.0 * (r.ci_low if r.ci_low is not None else y / 100))
            for r, _, y in mine
        ]
        hi = [
            max(0.0, 100.0 * (r.ci_high if r.ci_high is not None else y / 100) - y)
            for r, _, y in mine
        ]
        c = model_color(i)
        ax.errorbar(xs, ys, yerr=[lo, hi], color=c, lw=1, capsize=3, ls="none", zorder=3)
        faces = ["none" if r.memory_basis == "estimate" else c for r, _, _ in mine]
        ax.scatter(
            xs,
            ys,
            c=faces,
            edgecolors=c,
            marker=MARKERS[i % len(MARKERS)],
            s=55,
            zorder=4,
            label=model,
        )
        for r, x, y in mine:
            ax.annotate(r.level, (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    where = {r.variant: (x, y) for r, x, y in pts}
    front = [where[v] for v in decision.pareto_memory if v in where]
    if front:
        ax.step(
            [x for x, _ in front],
            [y for _, y in front],
            where="post",
            color="black",
            lw=1.2,
            ls="--",
            zorder=2,
            label="frontier (nothing smaller is as accurate)",
        )
    right = max(x for _, x, _ in pts) * 1.12
    for b in decision.budgets:
        if b.limit_gb is not None and b.limit_gb < right:
            ax.axvline(b.limit_gb, color="#555555", lw=0.8, ls=":", zorder=1)
            ax.annotate(
                b.label,
                (b.limit_gb, 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                ha="right",
                va="top",
                rotation=90,
            )
    ax.set_xlim(0, right)
    ax.set_xlabel("memory GB (filled: measured peak; hollow: published estimate)")
    ax.set_ylabel("accuracy % (95% Wilson CI)")
    ax.set_title("Memory/quality frontier across models (dotted: the answer's budgets)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _below(decision: Decision) -> dict[str, list[VariantRow]]:
    """Each model's variants below its baseline, highest precision first."""
    out: dict[str, list[VariantRow]] = {}
    for r in decision.variants:
        out.setdefault(r.model, [])
        if not r.is_baseline:
            out[r.model].append(r)
    return {m: sorted(rs, key=lambda r: level_rank(r.level)) for m, rs in out.items()}


def _tier_bands(ax: Axes, low: float, high: float) -> None:
    edges = [high, *(bound for _, bound in TIER_BOUNDS_BENCH), low]
    for name, top, bottom in zip(TIERS, edges, edges[1:], strict=False):
        ax.axhspan(bottom, top, color=TIER_COLORS[name], alpha=0.15, lw=0)
    for name, bound in TIER_BOUNDS_BENCH:
        ax.axhline(bound, color=TIER_COLORS[name], lw=0.9, ls="--")
    ax.axhline(0.0, color="black", lw=0.8)


def _ladder_panel(ax: Axes, model: str, rows: Sequence[VariantRow]) -> None:
    known = [
        r
        for r in rows
        if r.bench_change_pp is not None
        and r.bench_low_pp is not None
        and r.bench_high_pp is not None
    ]
    if not known:
        no_data(ax, f"{model}: paired changes")
        return
    lows = [r.bench_low_pp or 0.0 for r in known]
    highs = [r.bench_high_pp or 0.0 for r in known]
    bottom = min(-12.0, min(lows) - 2.0)
    top = max(4.0, max(highs) + 2.0)
    _tier_bands(ax, bottom, top)
    xs = list(range(len(known)))
    ys = [r.bench_change_pp or 0.0 for r in known]
    yerr = [
        [y - lo for y, lo in zip(ys, lows, strict=True)],
        [hi - y for y, hi in zip(ys, highs, strict=True)],
    ]
    ax.errorbar(xs, ys, yerr=yerr, color="black", lw=1.2, capsize=4, ls="none", zorder=3)
    ax.scatter(
        xs, ys, c=[color(r.certified_tier) for r in known], edgecolors="black", s=45, zorder=4
    )
    cert = [
        (x, r.bench_certified_pp)
        for x, r in zip(xs, known, strict=True)
        if r.bench_certified_pp is not None
    ]
    ax.scatter(
        [x for x, _ in cert],
        [c for _, c in cert],
        marker="_",
        s=220,
        color="black",
        zorder=5,
        label="certified bound (fixed sequence)",
    )
    ax.set_xticks(xs, [r.level for r in known], rotation=30)
    ax.set_xlim(-0.75, len(xs) - 0.25)
    ax.set_ylim(bottom, top)
    ax.set_ylabel("accuracy change vs baseline, pp")
    ax.set_title(model, fontsize=10)
    ax.legend(loc="lower left", fontsize=7)


def plot_tier_ladder(decision: Decision) -> Figure:
    """Per model: each level's paired change vs its baseline with its interval, coloured by
    certified tier, its certified bound marked, over the tier bands (-3 / -5 / -10 pp)."""
    return _per_model(
        decision,
        _ladder_panel,
        4.2,
        "Tier ladder: paired accuracy change vs the baseline, with its interval "
        "(point colour: certified tier)",
    )


def _flips_panel(ax: Axes, model: str, rows: Sequence[VariantRow]) -> None:
    known = [r for r in rows if r.flips_lost is not None and r.flips_gained is not None]
    if not known:
        no_data(ax, f"{model}: flips")
        return
    xs = list(range(len(known)))
    gained = [r.flips_gained or 0 for r in known]
    lost = [-(r.flips_lost or 0) for r in known]
    ax.bar(xs, gained, 0.5, color=TIER_COLORS["negligible"], label="gained (wrong -> right)")
    ax.bar(xs, lost, 0.5, color=TIER_COLORS["unacceptable"], label="lost (right -> wrong)")
    for x, g, lo in zip(xs, gained, lost, strict=True):
        ax.annotate(
            f"{g + lo:+d}",
            (x, max(g, 0)),
            fontsize=7,
            ha="center",
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(xs, [r.level for r in known], rotation=30)
    ax.set_xlim(-0.75, len(xs) - 0.25)
    ax.set_ylabel("paired items")
    ax.set_title(model, fontsize=10)
    ax.legend(loc="lower left", fontsize=7)


def plot_flips(decision: Decision) -> Figure:
    """Per model and level: the baseline's right answers lost and wrong answers gained (net
    change in items above each bar)."""
    return _per_model(
        decision,
        _flips_panel,
        3.8,
        "Answers that flipped vs the baseline, per level (paired items)",
    )


def _per_model(
    decision: Decision,
    draw: Callable[[Axes, str, Sequence[VariantRow]], None],
    panel_height: float,
    title: str,
) -> Figure:
    """One panel per model with levels below its baseline, drawn by ``draw``."""
    ladders = _below(decision)
    nrows, ncols = panels(len(ladders))
    fig = Figure(figsize=(11, panel_height * nrows), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (model, rows) in zip(axes, ladders.items(), strict=False):
        draw(ax, model, rows)
    for ax in axes[len(ladders) :]:
        ax.set_axis_off()
    if not ladders:
        no_data(axes[0], "variants")
    fig.suptitle(title)
    return fig
