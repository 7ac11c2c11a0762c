"""The determinism section of report.md, and the opening's line when something differed."""

from __future__ import annotations

from quantmatrix.analysis.determinism import Determinism, Rate, VariantDeterminism
from quantmatrix.analysis.model import Analysis
from quantmatrix.report.fmt import MISSING, pct, sci, table

HOW = (
    "After the evaluation, the answered items of whole batch groups (K of each kind per "
    "variant, chosen by a seeded rule that does not depend on the level) were asked again on "
    "a fresh backend: a new llama.cpp model and context at another thread count for the "
    "embedded engine (the same batch groups, so the same batch shapes), a new client for a "
    "server. **Same output** compares the text byte for byte with the logged answer; **same "
    "letter probabilities** compares the option letters' probabilities at the answer's first "
    "step bit for bit, where both answers have them. Rates with 95% Wilson intervals."
)


def _rate(r: Rate | None) -> str:
    if r is None or r.rate is None:
        return MISSING
    return f"{r.same}/{r.n} ({pct(r.rate)} [{pct(r.ci_low)}, {pct(r.ci_high)}])"


def _threads(v: VariantDeterminism) -> str:
    if v.threads is None and v.rerun_threads is None:
        return MISSING
    return f"{v.threads} -> {v.rerun_threads}"


def _variant_rows(check: Determinism) -> str:
    rows = []
    for v in check.variants:
        kinds = ", ".join(f"{k} {r.same}/{r.n}" for k, r in v.outputs_by_kind.items())
        rows.append([
            v.variant, v.backend, _threads(v), "/".join(str(n) for n in v.group_sizes),
            _rate(v.outputs), kinds or MISSING, _rate(v.letters), sci(v.letters_max_abs_diff),
            v.errors, ", ".join(v.differing) or MISSING,
        ])  # fmt: skip
    head = ["Variant", "Backend", "Threads", "Batch", "Same output", "By kind"]
    head += ["Same letter probs", "Max letter diff", "Errors", "Differing items"]
    return table(head, rows)


def _backend_rows(check: Determinism) -> str:
    rows = [[b.backend, b.variants, _rate(b.outputs), _rate(b.letters)] for b in check.backends]
    return table(["Backend", "Variants", "Same output", "Same letter probs"], rows)


def render_determinism_md(analysis: Analysis) -> str:
    check = analysis.determinism
    if check is None:
        return ""
    verdict = (
        "Every answer asked again was the same, bit for bit."
        if check.all_same
        else "**Some answers differed when asked again:** results of this run are not "
        "bit-reproducible on this backend and machine; differences between levels of the "
        "size of these changes are not evidence of a quantization effect."
    )
    parts = ["## Determinism", "", HOW, "", verdict, "", _variant_rows(check), ""]
    parts += ["Per backend:", "", _backend_rows(check), ""]
    return "\n".join(parts) + "\n"


def determinism_note(analysis: Analysis) -> list[str]:
    """The opening's line, only when some answer asked again differed."""
    check = analysis.determinism
    if check is None or check.all_same:
        return []
    names = [v.variant for v in check.variants if not v.all_same]
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    rates = [v.outputs for v in check.variants]
    letters = [v.letters for v in check.variants if v.letters is not None]
    text = f"{sum(r.n - r.same for r in rates)} of {sum(r.n for r in rates)} outputs"
    if letters:
        text += (
            f" and {sum(r.n - r.same for r in letters)} of {sum(r.n for r in letters)} "
            "letter-probability vectors"
        )
    return [
        f"**Not deterministic:** asked again on a fresh backend, {text} differed from the "
        f"logged answers ({shown}; see Determinism)."
    ]


def determinism_line(analysis: Analysis) -> str | None:
    """One line for the end of ``quantmatrix run``: what the check found, if it ran."""
    check = analysis.determinism
    if check is None:
        return None
    outputs = [v.outputs for v in check.variants]
    letters = [v.letters for v in check.variants if v.letters is not None]
    line = (
        f"determinism: {sum(r.same for r in outputs)} of {sum(r.n for r in outputs)} answers "
        "asked again on a fresh backend had the same text"
    )
    if letters:
        line += f", {sum(r.same for r in letters)} of {sum(r.n for r in letters)} the same letter "
        line += "probabilities"
    return line + ("" if check.all_same else " (see the report's Determinism section)")
