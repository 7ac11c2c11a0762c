"""``report.md`` and ``analysis.json``: pure functions of the run log, byte-identical on rerun."""

from __future__ import annotations

import json
from pathlib import Path

from quantmatrix.analysis.build import analyze
from quantmatrix.analysis.model import Analysis
from quantmatrix.analysis.variant_model import VariantSummary, batch_basis
from quantmatrix.decide import rule_text
from quantmatrix.decision.build import decide
from quantmatrix.decision.model import Decision, Policy
from quantmatrix.report.certified_md import render_certified_md
from quantmatrix.report.decision_files import write_decision_outputs
from quantmatrix.report.determinism_md import determinism_note, render_determinism_md
from quantmatrix.report.divergence_md import plot_kld_vs_accuracy, render_divergence_md
from quantmatrix.report.fmt import MISSING, gb, num, pct, sci, signed, table
from quantmatrix.report.generation_md import render_generation_md
from quantmatrix.report.memory_context_md import render_memory_context_md
from quantmatrix.report.origin_md import origin_notes
from quantmatrix.report.probes_md import plot_long_context, render_probes
from quantmatrix.report.stats_md import render_statistics_md
from quantmatrix.runlog import RunLog
from quantmatrix.runlog.writes import write_text_atomic


def _notes(analysis: Analysis) -> list[str]:
    notes = [f"**Run log:** {w}." for w in analysis.log_warnings]
    notes += determinism_note(analysis)
    notes += origin_notes(analysis.variants)
    dec = analysis.decoding
    notes.append(
        f"Multiple-choice answers are generated greedily (temperature {dec.temperature}, "
        f"seed {dec.seed}) with a budget of {dec.mc_max_new_tokens} new tokens"
        + (", stopped at the end of the answer line" if dec.mc_stop_at_line_end else "")
        + "; the published study generated up to 256 tokens for every item."
    )
    notes += batch_note(analysis)
    z = analysis.sizes
    if z.items_per_variant:
        tasks = ", ".join(f"{t} {n}" for t, n in z.per_task.items())
        notes.append(
            f"Each variant answered {z.items_per_variant} items ({tasks}). Resolution: one "
            f"item moves accuracy by {z.one_item_pp:.2f}pp; the 95% Wilson interval at 50% is "
            f"+/-{100 * (z.wilson_half_width_at_50pct or 0.0):.1f}pp; an unpaired test detects a "
            f"{100 * (z.unpaired_mde_at_50pct or 0.0):.1f}pp difference with 80% power."
        )
    return notes


def batch_note(analysis: Analysis) -> list[str]:
    """Say what the speed figures are: single-stream (the timing phase ran), or a batch's
    aggregate throughput, not one request's."""
    if _single_stream(analysis):
        return [single_stream_note(analysis)]
    sizes = sorted({n for s in analysis.variants if (n := s.batch_size or 1) > 1})
    if not sizes:
        return []
    batches = " or ".join(str(n) for n in sizes)
    return [
        f"**Speed figures are batched:** the embedded engine decoded {batches} requests "
        "together, so Decode tok/s, Wall tok/s, $/1M and TTFT are that batch's aggregate "
        "throughput and latency, not what one request alone sees (the study's `timing` "
        "section, on by default, or `batch_size: 1` gives single-stream figures); every level "
        "ran with the same batch shapes."
    ]


def _single_stream(analysis: Analysis) -> bool:
    return any(s.single_stream is not None for s in analysis.variants)


def single_stream_note(analysis: Analysis) -> str:
    sizes = sorted({n for s in analysis.variants if (n := s.batch_size or 1) > 1})
    batched = (
        f"; the evaluation decoded {' or '.join(str(n) for n in sizes)} requests together, and "
        "its aggregate throughput is shown beside them as tok/s at batch N, never mixed in"
        if sizes
        else ""
    )
    return (
        "**Speed figures are single-stream:** Decode tok/s, TTFT and $/1M come from a timing "
        "subset (the plan's first items of each kind, the study's `timing` section) asked one "
        "request at a time after a warm-up, in rounds that visit every level of a model in "
        f"turn, as one user sending one request sees them{batched}."
    )


def _speed_cells(analysis: Analysis, s: VariantSummary) -> list[str]:
    tm = s.speed
    cells = [num(tm.native_decode_tps), num(tm.wall_tps)]
    cells += [f"{num(tm.ttft_mean_s, 3)} / {num(tm.ttft_median_s, 3)}"]
    if _single_stream(analysis):  # logs without the timing phase: the columns as before
        cells += [s.speed_basis, _evaluation_tps(s)]
    return cells


def _evaluation_tps(s: VariantSummary) -> str:
    return f"{num(s.timing.native_decode_tps)} {batch_basis(s.batch_size)}"


def _headline(analysis: Analysis) -> str:
    tasks = sorted({t for s in analysis.variants for t in s.tasks})
    headers = ["Model", "Level", "Size", "BPW", "Accuracy [95% CI]", "Raw EM", "Δ pp", "Gen Δ %"]
    headers += ["Tier", "Certified", "Best case"]
    headers += [t for t in tasks] + ["Unparsed", "KLD", "Same top", "Letter KL", "Same answer"]
    headers += ["Decode tok/s", "Wall tok/s"]
    headers += ["TTFT mean/med s"]
    if _single_stream(analysis):
        headers += ["Speed basis", "Evaluation decode tok/s"]
    rows = []
    for s in analysis.variants:
        f = s.file
        row = [
            s.model,
            s.level + (" (baseline)" if s.is_baseline else ""),
            gb(None if f is None else f.size_bytes),
            num(None if f is None else f.bits_per_weight, 2),
            f"{pct(s.accuracy)} [{pct(s.ci_low)}, {pct(s.ci_high)}]",
            pct(s.raw_exact),
            signed(s.delta_pp),
            signed(s.gen_delta_pct),
            s.tier or MISSING,
            *_certified_cells(s),
        ]
        row += [pct(s.tasks[t].accuracy) if t in s.tasks else MISSING for t in tasks]
        row += [
            pct(s.unparsed_rate), sci(s.kld_mean), pct(s.top_agreement),
            sci(s.letter_kl_mean), pct(s.letter_agreement),
            *_speed_cells(analysis, s),
        ]  # fmt: skip
        rows.append(row)
    return table(headers, rows)


def _certified_cells(s: VariantSummary) -> list[str]:
    """Certified and best-case tier (a baseline is its own reference: '-')."""
    c = s.certified
    return [MISSING, MISSING] if c is None else [c.certified, c.best]


def _files(analysis: Analysis) -> str:
    rows = []
    for s in analysis.variants:
        f = s.file
        types = (None if f is None else f.tensor_types) or {}
        hist = ", ".join(f"{k} {v}" for k, v in types.items())
        file_type = None if f is None else f.file_type
        peak = None if s.memory is None else s.memory.peak_bytes
        rows.append([
            s.variant, MISSING if file_type is None else file_type,
            gb(None if f is None else f.size_bytes),
            num(None if f is None else f.bits_per_weight, 3), hist or MISSING, gb(peak),
        ])  # fmt: skip
    return table(
        ["Variant", "File type", "Size", "BPW (measured)", "Tensor types", "Peak RSS"], rows
    )


def _timing(analysis: Analysis) -> str:
    rows = []
    for s in analysis.variants:
        tm, oh = s.timing, s.overhead
        rows.append([
            s.variant, num(tm.native_prompt_tps), num(tm.native_decode_tps),
            num(tm.mean_prompt_tokens), num(tm.mean_generated_tokens),
            num(oh.eval_wall_s), num(oh.native_s), num(oh.harness_overhead, 3),
        ])  # fmt: skip
    head = ["Variant", "Prompt tok/s", "Decode tok/s", "Prompt tokens", "Generated tokens"]
    head += ["Eval wall s", "Engine s", "Wall / engine"]
    text = table(head, rows)
    if _single_stream(analysis):
        text += (
            "\n\nPrompt and decode tok/s here are the evaluation's own (at its batch size), "
            "the basis of the harness overhead; the single-stream figures are above."
        )
    return text


def render_markdown(analysis: Analysis, decision_md: str = "", answer_md: str = "") -> str:
    """The report: the answer first, then notes, the other decision sections (summary first),
    then the measurements."""
    overall = analysis.harness_overhead
    parts = [f"# quantmatrix report: {analysis.study}", ""]
    if answer_md:
        parts += [answer_md.rstrip(), ""]
    parts += [f"> {n}\n" for n in _notes(analysis)]
    if decision_md:
        parts += [decision_md.rstrip(), ""]
    parts += ["## Accuracy, tiers and speed", "", _headline(analysis), ""]
    parts += [
        f"Tier (point): {rule_text()}; the "
        "worse of the two signals, vs each model's baseline. "
        "Decode tok/s is llama.cpp's own decode time; wall tok/s is generated tokens over the "
        "client's whole request time.",
        "",
        render_certified_md(analysis),
        render_generation_md(analysis),
        _divergence_section(analysis),
        *_if_any(render_determinism_md(analysis)),
        *_if_any(render_probes(analysis.probes)),
        "## Variant files and memory",
        "",
        _files(analysis),
        "",
        *[md for md in [render_memory_context_md(analysis)] if md],  # with a memory phase
        "## Timing: engine vs harness",
        "",
        _timing(analysis),
        "",
        f"Harness overhead over the whole evaluation (wall time of the evaluation loop over the "
        f"engine's own prompt + decode time): **{num(overall.ratio, 3)}**.",
        "",
        render_statistics_md(analysis.statistics).rstrip(),
        "",
    ]
    if _single_stream(analysis):
        parts += [
            "The Timing series (TTFT s, decode tok/s per request) come from the "
            "single-stream timing rows of each variant that has them.",
            "",
        ]
    return "\n".join(parts)


def _if_any(section: str) -> list[str]:
    """A section that a run may not have: nothing at all (not an empty line) when absent."""
    return [section] if section else []


def _divergence_section(analysis: Analysis) -> str:
    div = analysis.divergence
    if not div.order:
        return ""
    body = render_divergence_md(div, analysis.divergence_cliffs).rstrip()
    return body + "\n\n![KL divergence vs accuracy change](plots/kld_vs_accuracy.png)\n"


def analysis_json(analysis: Analysis, decision: Decision) -> str:
    """``analysis.json``: the analysis with its decision under ``"decision"``."""
    body = {**analysis.json_dict(), "decision": decision.json_dict()}
    return json.dumps(body, indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_report(run_dir: Path, policy: Policy | None = None) -> tuple[Path, Analysis]:
    """Every file of the report, from one analysis and one decision built from it."""
    analysis = analyze(RunLog.load(run_dir))
    decision = decide(analysis, policy or Policy())
    write_text_atomic(run_dir / "analysis.json", analysis_json(analysis, decision))
    written = write_decision_outputs(run_dir, decision)
    if analysis.divergence.order:
        plot_kld_vs_accuracy(
            analysis.divergence,
            analysis.accuracy_deltas(),
            run_dir / "plots" / "kld_vs_accuracy.png",
        )
    lc = None if analysis.probes is None else analysis.probes.long_context
    if lc is not None and lc.levels:
        plot_long_context(lc, run_dir / "plots" / "long_context_kl.png")
    path = run_dir / "report.md"
    body = render_markdown(analysis, written["markdown"], written["answer"])
    write_text_atomic(path, body)
    return path, analysis
