"""What ``quantmatrix run`` prints at the end: the answer (the report's opening sentences),
then every variant in a table that fits an 80-column terminal with its names whole."""

from __future__ import annotations

from collections.abc import Callable

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from quantmatrix.decision.model import Decision, VariantRow
from quantmatrix.report.answer import answer_note, budget_items
from quantmatrix.report.decision_md import adaptive_saving
from quantmatrix.report.fmt import MISSING, num, signed

TERMINAL_WIDTH = 80


def answer_lines(decision: Decision) -> list[str]:
    """The answer as plain lines: one per budget, its details indented under it."""
    out = []
    for label, line, subs in budget_items(decision):
        out.append(f"{label}: {line}")
        out += [f"  - {sub}" for sub in subs]
    return out


def _mem(r: VariantRow) -> str:
    return MISSING if r.memory_bytes is None else f"{float(r.memory_bytes) / 1e9:.2f}"


def _acc(r: VariantRow) -> str:
    return MISSING if r.accuracy is None else f"{100 * r.accuracy:.1f}"


def _bound(r: VariantRow) -> str:
    return "base" if r.is_baseline else signed(r.bench_certified_pp)


Cell = Callable[[VariantRow], str]
# (header, cell, droppable: the first dropped when the table is too wide is the last listed)
COLUMNS: tuple[tuple[str, Cell, bool], ...] = (
    ("GB", _mem, False),
    ("acc %", _acc, False),
    ("Δ pp", lambda r: "base" if r.is_baseline else signed(r.delta_pp), False),
    ("certified", lambda r: r.certified_tier or MISSING, False),
    (">= pp", _bound, True),
    ("tok/s", lambda r: num(r.decode_tps), True),
    ("best case", lambda r: r.best_tier or MISSING, True),
)


def _table(decision: Decision, columns: list[tuple[str, Cell, bool]]) -> Table:
    names = [r.variant for r in decision.variants]
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title_justify="left")
    t.add_column("variant", no_wrap=True, min_width=max((len(n) for n in names), default=7))
    for head, _, _ in columns:
        t.add_column(head, no_wrap=True, justify="right" if head != "certified" else "left")
    for r in decision.variants:
        t.add_row(r.variant, *(cell(r) for _, cell, _ in columns))
    return t


def compact_table(decision: Decision, width: int = TERMINAL_WIDTH) -> Table:
    """Every variant: memory, accuracy, change vs its baseline, certified tier (and, where
    the width allows, the certified bound, tok/s and the best case); columns are dropped,
    never the names shortened, until it fits ``width``."""
    columns = list(COLUMNS)
    measure = Console(width=10_000)
    while True:
        t = _table(decision, columns)
        wide = measure.measure(t).maximum
        droppable = [c for c in columns if c[2]]
        if wide <= width or not droppable:
            return t
        columns.remove(droppable[-1])


def terminal_summary(decision: Decision, width: int = TERMINAL_WIDTH) -> list[RenderableType]:
    """The answer, every variant, then how the answer is made."""
    out: list[RenderableType] = [Text("The answer", style="bold")]
    out += [Text(line) for line in answer_lines(decision)]
    out += [Text(""), compact_table(decision, width), Text(answer_note(decision), style="dim")]
    saving = adaptive_saving(decision)
    if saving:
        out.append(Text(saving, style="dim"))
    return out
