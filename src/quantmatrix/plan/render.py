"""A plan as plain text lines, 80 columns wide when the study's model names are short (pure)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from quantmatrix.plan.model import Phase, Plan, Range, Speeds, VariantPlan

WIDTH = 80

BASIS_MARK = {"measured": "", "given": " g", "scaled": " ~"}


def duration(seconds: float | None) -> str:
    """``95.0`` -> ``1 min 35 s``; ``None`` -> ``unknown``."""
    if seconds is None:
        return "unknown"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def span(r: Range) -> str:
    if r.low is None or r.high is None:
        return "unknown"
    if abs(r.high - r.low) < 1.0:
        return duration(r.high)
    return f"{duration(r.low)} .. {duration(r.high)}"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _speeds(s: Speeds | None) -> str:
    if s is None:
        return "?"
    return f"{s.prompt_tps:.0f}/{s.decode_tps:.1f}{BASIS_MARK[s.basis]}"


def _row(v: VariantPlan) -> str:
    mc = f"{v.mc[0]}" if v.mc[0] == v.mc[1] else f"{v.mc[0]}-{v.mc[1]}"
    name = v.variant + (" *" if v.baseline else "")
    ev = v.eval_s
    when = _clock(ev.high) if ev.low == ev.high else f"{_clock(ev.low)}-{_clock(ev.high)}"
    return f"  {name:<20} {mc:>6} {v.generation:>3} {_speeds(v.speeds):>11} {when:>9}  {v.file}"


def _phase(p: Phase) -> str:
    return f"  {p.name:<11} {span(p.seconds):<22} {p.note}"


def _wrapped(lines: Iterable[str], indent: str = "") -> list[str]:
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                             break_on_hyphens=False) or [""]  # fmt: skip
    return out


def render(plan: Plan) -> list[str]:
    lines = [*_wrapped([f"study {plan.study}: {plan.design}", *plan.resolution]), ""]
    lines.append(f"  {'variant (* baseline)':<20} {'MC':>6} {'gen':>3} {'pp/tg tok/s':>11} "
                 f"{'eval':>9}  weights")  # fmt: skip
    lines += [_row(v) for v in plan.variants]
    lines += ["  (~ scaled from a measured level by file size; g given in the speeds file)", ""]
    lines += ["samples:", *_wrapped(plan.samples, "  ")]
    lines += ["to download:", *_wrapped(plan.downloads or ("nothing",), "  ")]
    lines += ["to build:", *_wrapped(plan.builds or ("nothing",), "  ")]
    lines += ["ETA:", *(_phase(p) for p in plan.phases)]
    lines.append(f"  {'total':<11} {span(plan.total)}")
    lines += ["assumptions:", *_wrapped(plan.assumptions, "  ")]
    return lines
