"""What every decision plot shares: size, tier and model colours, axis orders, the empty panel."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes

from quantmatrix.decision.model import VariantRow
from quantmatrix.kvcache import label_rank

DPI = 100
TIER_COLORS = {
    "negligible": "#2e7d32",
    "acceptable": "#f9a825",
    "concerning": "#ef6c00",
    "unacceptable": "#c62828",
}
UNKNOWN_COLOR = "#9e9e9e"
MARKERS = "osD^vP*Xh<>"
# one colour per model (matplotlib's tab10 without its green and red, kept for the tiers)
MODEL_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")


def color(tier: str | None) -> str:
    return TIER_COLORS.get(tier or "", UNKNOWN_COLOR)


def model_color(i: int) -> str:
    return MODEL_COLORS[i % len(MODEL_COLORS)]


def level_rank(level: str) -> tuple[tuple[int, int], str]:
    return label_rank(level), level


def levels_of(rows: Sequence[VariantRow]) -> list[str]:
    return sorted({r.level for r in rows}, key=level_rank)


def models_of(rows: Sequence[VariantRow]) -> list[str]:
    return list(dict.fromkeys(r.model for r in rows))


def no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def panels(n: int, ncols: int = 3) -> tuple[int, int]:
    """(rows, columns) of a grid of ``n`` panels, at most ``ncols`` wide."""
    cols = max(1, min(ncols, n))
    return -(-max(n, 1) // cols), cols
