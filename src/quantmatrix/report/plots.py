"""The decision plots: deterministic PNGs (Agg, fixed size and dpi, no software/date metadata).

Every plot is drawn from the decision alone (``decision.build.decide``), so the same
analysis gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from quantmatrix.decide import TIER_BOUNDS, TIERS
from quantmatrix.decision.model import Decision, FigureName, VariantRow
from quantmatrix.kvcache import label_rank
from quantmatrix.report.fmt import MISSING
from quantmatrix.report.plot_kit import (
    DPI,
    MARKERS,
    TIER_COLORS,
    UNKNOWN_COLOR,
    color,
    levels_of,
    models_of,
    no_data,
)
from quantmatrix.report.plots_answer import plot_flips, plot_frontier, plot_tier_ladder
from quantmatrix.runlog.writes import make_dirs, write_atomic


def _bands(ax: Axes, base_acc: float | None) -> None:
    """Shade the tier bands below the model's baseline accuracy (pp, as the tiers are drawn)."""
    if base_acc is None:
        return
    top = 100.0 * base_acc
    edges = [0.0, *(bound for _, bound in TIER_BOUNDS), -100.0]
    ax.axhspan(top, 100.0, color=TIER_COLORS["negligible"], alpha=0.08, lw=0)
    for name, hi, lo in zip(TIERS, edges, edges[1:], strict=False):
        ax.axhspan(top + lo, top + hi, color=TIER_COLORS[name], alpha=0.14, lw=0)
    ax.axhline(top, color="black", lw=0.8, ls="--")


def plot_accuracy(decision: Decision) -> Figure:
    """Accuracy per quant level, one panel per model, 95% CI bars over the tier bands."""
    rows = decision.variants
    models = models_of(rows) or [""]
    ncols = min(3, len(models))
    nrows = -(-len(models) // ncols)
    fig = Figure(figsize=(11, 6.5), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, model in zip(axes, models, strict=False):
        mine = sorted((r for r in rows if r.model == model), key=lambda r: label_rank(r.level))
        known = [(r, r.accuracy) for r in mine if r.accuracy is not None]
        mine = [r for r, _ in known]
        if not mine:
            no_data(ax, "accuracy")
            continue
        _bands(ax, mine[0].baseline_accuracy)
        xs = list(range(len(mine)))
        ys = [100 * acc for _, acc in known]
        # max(0, .): a Wilson bound at k = 0 or n can sit 1e-17 on the wrong side of the point
        lo = [max(0.0, 100 * (acc - (r.ci_low or acc))) for r, acc in known]
        hi = [max(0.0, 100 * ((r.ci_high or acc) - acc)) for r, acc in known]
        ax.errorbar(xs, ys, yerr=[lo, hi], color="black", capsize=3, lw=1, zorder=3)
        ax.scatter(xs, ys, c=[color(r.tier) for r in mine], s=40, zorder=4, edgecolors="k")
        ax.set_xticks(xs, [r.level for r in mine], rotation=30)
        ax.set_ylim(0, 100)
        ax.set_title(model, fontsize=10)
        ax.set_ylabel("accuracy %")
    for ax in axes[len(models) :]:
        ax.set_axis_off()
    fig.suptitle("Accuracy by quant level (95% Wilson CI; bands: tiers vs the baseline)")
    return fig


def _points(
    rows: Sequence[VariantRow], key: FigureName, scale: float
) -> dict[str, tuple[VariantRow, float, float]]:
    """variant -> (row, x = the row's ``key`` / scale, y = accuracy %), where both are known."""
    out = {}
    for r in rows:
        x, acc = r.figure(key), r.accuracy
        if x is not None and acc is not None:
            out[r.variant] = (r, x / scale, 100 * acc)
    return out


def _scatter_vs(
    decision: Decision, key: FigureName, scale: float, xlabel: str, title: str, front: Sequence[str]
) -> Figure:
    pts = _points(decision.variants, key, scale)
    rows = [r for r, _, _ in pts.values()]
    fig = Figure(figsize=(9, 6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    if not rows:
        no_data(ax, xlabel)
        return fig
    for i, model in enumerate(models_of(rows)):
        mine = [r for r in rows if r.model == model]
        hollow = [r.memory_basis == "estimate" and key == "memory_bytes" for r in mine]
        ax.scatter(
            [pts[r.variant][1] for r in mine],
            [pts[r.variant][2] for r in mine],
            c=["none" if h else color(r.tier) for r, h in zip(mine, hollow, strict=True)],
            edgecolors=[color(r.tier) for r in mine],
            marker=MARKERS[i % len(MARKERS)],
            s=60,
            label=model,
            zorder=3,
        )
        for r in mine:
            xy = pts[r.variant][1:]
            ax.annotate(r.level, xy, fontsize=7, xytext=(4, 4), textcoords="offset points")
    line = [pts[v] for v in front if v in pts]
    if line:
        xs, ys = [x for _, x, _ in line], [y for _, _, y in line]
        ax.step(xs, ys, where="post", color="black", lw=1.2, ls="--", zorder=2)
        ax.scatter(xs, ys, s=180, facecolors="none", edgecolors="black", label="Pareto front")
    ax.margins(0.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy %")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_cost(decision: Decision) -> Figure:
    title = f"Quality vs cost at ${decision.cost_per_hour:g}/hour (Pareto front dashed)"
    label = "$ per 1M generated tokens"
    return _scatter_vs(decision, "usd_per_m", 1.0, label, title, decision.pareto_cost)


def plot_heatmap(decision: Decision) -> Figure:
    """Model x level grid coloured by tier, each cell annotated with its bench delta."""
    rows = decision.variants
    fig = Figure(figsize=(9, 5), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    models, levels = models_of(rows), levels_of(rows)
    if not rows:
        no_data(ax, "tiers")
        return fig
    codes = [*TIERS, None]
    grid = [[float("nan")] * len(levels) for _ in models]
    for r in rows:
        grid[models.index(r.model)][levels.index(r.level)] = codes.index(r.tier)
        text = MISSING if r.delta_pp is None else f"{r.delta_pp:+.1f}"
        text = "base" if r.is_baseline else text
        at = (levels.index(r.level), models.index(r.model))
        ax.text(*at, text, ha="center", va="center", fontsize=8, color="white")
    cmap = ListedColormap([*TIER_COLORS.values(), UNKNOWN_COLOR]).with_extremes(bad="#ffffff")
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(codes) - 0.5, aspect="auto")
    ax.set_xticks(range(len(levels)), levels)
    ax.set_yticks(range(len(models)), models)
    ax.grid(False)
    legend = "negligible=green, acceptable=yellow, concerning=orange, unacceptable=red"
    ax.set_title(f"Tier per model and level (cell: bench delta pp)\n{legend}")
    return fig


def _bars(ax: Axes, rows: Sequence[VariantRow], key: FigureName, ylabel: str) -> None:
    models, levels = models_of(rows), levels_of(rows)
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        mine = [(r, v) for r in rows if r.model == model for v in [r.figure(key)] if v is not None]
        xs = [levels.index(r.level) - 0.4 + width * (i + 0.5) for r, _ in mine]
        ax.bar(xs, [v for _, v in mine], width=width, label=model)
    ax.set_xticks(range(len(levels)), levels)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=8)


def plot_speed(decision: Decision) -> Figure:
    """Native decode tok/s and mean time to first token per level, bars grouped by model."""
    rows = decision.variants
    fig = Figure(figsize=(10, 7), dpi=DPI, layout="constrained")
    top, bottom = fig.subplots(2, 1)
    panels: tuple[tuple[Axes, FigureName, str], ...] = (
        (top, "decode_tps", "decode tok/s"),
        (bottom, "ttft_s", "TTFT s"),
    )
    for ax, key, label in panels:
        if any(r.figure(key) is not None for r in rows):
            _bars(ax, rows, key, label)
        else:
            no_data(ax, label)
    single = any(r.speed_basis == "single-stream" for r in rows)  # the timing phase ran
    basis = ", single-stream" if single else ""
    top.set_title(f"Decode speed (engine's own timing{basis}) and time to first token, per level")
    return fig


PLOTS: dict[str, Callable[[Decision], Figure]] = {
    "quality_vs_memory": plot_frontier,
    "tier_ladder": plot_tier_ladder,
    "flips_by_level": plot_flips,
    "accuracy_by_level": plot_accuracy,
    "quality_vs_cost": plot_cost,
    "tier_heatmap": plot_heatmap,
    "speed_by_level": plot_speed,
}


def _save_png(fig: Figure, path: Path) -> None:
    """The figure as a PNG, written whole or not at all (``runlog.writes.write_atomic``)."""
    meta = {"Software": None}
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI, metadata=meta))


def write_plots(decision: Decision, out_dir: Path) -> dict[str, Path]:
    """Draw every plot to ``out_dir/<name>.png``; returns name -> path, in a fixed order."""
    make_dirs(out_dir)
    paths: dict[str, Path] = {}
    with matplotlib.rc_context(
        {"font.family": "DejaVu Sans", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
    ):
        for name, draw in PLOTS.items():
            path = out_dir / f"{name}.png"
            _save_png(draw(decision), path)
            paths[name] = path
    return paths
