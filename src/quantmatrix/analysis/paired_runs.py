"""Two runs of the same variants compared item by item, as the published cross-phase check did
(pure functions of the two run logs; ``quantmatrix compare``).

For each variant both runs measured, on the items both answered (multiple choice) or both
scored (generation, against the reference):

- **accuracy**: the paired change B - A in percentage points with Tango's score interval
  (``stats/paired.py``, the certified tiers' method) from the 2x2 table of correctness;
- **BERTScore F1, coherence, ROUGE-L** (the published check's three; coherence is the
  SemScore-style cosine similarity of output and reference embeddings, ``text_scorer.py``) and
  their key average: the mean paired difference B - A, on the metric's 0-1 scale, with a
  Student t interval (statsmodels ``DescrStatsW.tconfint_mean``; zero width when every
  difference is equal).

A signal **agrees** when its interval holds 0; a variant agrees within its intervals when
every signal that could be computed does, and differs when any does not. Each interval is at
``1 - alpha`` on its own (no adjustment over signals or variants). Generation signals are left
out when the two runs were scored with different models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from statsmodels.stats.weightstats import DescrStatsW

from quantmatrix.analysis.frozen import Frozen
from quantmatrix.analysis.generation import KEY_METRICS, item_metrics
from quantmatrix.analysis.stats.paired import CERTIFY_METHOD, paired_change_interval
from quantmatrix.runlog import RunLog
from quantmatrix.tasks import multiple_choice

GENERATION_SIGNALS = (*KEY_METRICS, "key_avg")  # bertscore_f1, coherence, rouge_l, key_avg
Verdict = Literal["agree within intervals", "differ", "not comparable"]


class SignalAgreement(Frozen):
    """One signal of one variant, B against A on their shared items."""

    signal: str
    unit: str  # "pp" (accuracy) or "points" (a 0-1 metric's difference)
    n: int
    a: float | None  # the mean over the shared items in run A (accuracy as a proportion)
    b: float | None
    change: float | None  # B - A, in the unit
    low: float | None
    high: float | None
    method: str
    agree: bool | None  # the interval holds 0; None: fewer than 2 shared items


class VariantAgreement(Frozen):
    variant: str
    signals: tuple[SignalAgreement, ...]
    verdict: Verdict


class RunsAgreement(Frozen):
    alpha: float
    variants: tuple[VariantAgreement, ...]
    note: str  # why some signals were left out, or ""


def _correct(log: RunLog) -> dict[str, dict[str, bool]]:
    out: dict[str, dict[str, bool]] = {}
    for r in log.samples:
        if r.task_kind == "multiple_choice":
            out.setdefault(r.variant, {})[r.item_key] = bool(
                multiple_choice.score_row(r)["correct"]
            )
    return out


def accuracy_agreement(
    a: Mapping[str, bool], b: Mapping[str, bool], alpha: float
) -> SignalAgreement:
    keys = sorted(set(a) & set(b))
    xa, xb = [a[k] for k in keys], [b[k] for k in keys]
    if len(keys) < 2:
        return SignalAgreement(signal="accuracy", unit="pp", n=len(keys), a=None, b=None,
                               change=None, low=None, high=None, method=CERTIFY_METHOD,
                               agree=None)  # fmt: skip
    ch = paired_change_interval(xa, xb, alpha, CERTIFY_METHOD)
    return SignalAgreement(
        signal="accuracy", unit="pp", n=ch.n, a=float(np.mean(xa)), b=float(np.mean(xb)),
        change=ch.change, low=ch.low, high=ch.high, method=ch.method,
        agree=ch.low <= 0.0 <= ch.high,
    )  # fmt: skip


def mean_difference(
    signal: str, a: Mapping[str, float], b: Mapping[str, float], alpha: float
) -> SignalAgreement:
    """The mean paired difference B - A with its t interval, on the shared keys."""
    keys = sorted(set(a) & set(b))
    xa = np.asarray([a[k] for k in keys], dtype=float)
    xb = np.asarray([b[k] for k in keys], dtype=float)
    if len(keys) < 2:
        return SignalAgreement(signal=signal, unit="points", n=len(keys), a=None, b=None,
                               change=None, low=None, high=None, method="paired t",
                               agree=None)  # fmt: skip
    diff = xb - xa
    mean = float(diff.mean())
    if float(diff.std()) == 0.0:
        low = high = mean
    else:
        lo, hi = DescrStatsW(diff).tconfint_mean(alpha=alpha)
        low, high = float(lo), float(hi)
    return SignalAgreement(
        signal=signal, unit="points", n=len(keys), a=float(xa.mean()), b=float(xb.mean()),
        change=mean, low=low, high=high, method="paired t", agree=low <= 0.0 <= high,
    )  # fmt: skip


def _verdict(signals: Sequence[SignalAgreement]) -> Verdict:
    known = [s.agree for s in signals if s.agree is not None]
    if not known:
        return "not comparable"
    return "agree within intervals" if all(known) else "differ"


def _scoring_models(log: RunLog) -> set[str]:
    return {r.models.model_dump_json() for r in log.scores}


def pair_runs(a: RunLog, b: RunLog, alpha: float = 0.05) -> RunsAgreement:
    """Every variant of A that B also measured, its signals paired on the shared items."""
    ca, cb = _correct(a), _correct(b)
    scored_alike = _scoring_models(a) == _scoring_models(b) or not (a.scores and b.scores)
    note = "" if scored_alike else (
        "generation signals left out: the two runs were scored with different models"
    )  # fmt: skip
    measured_a, measured_b = {r.variant for r in a.samples}, {r.variant for r in b.samples}
    order = [m.variant_id(lb) for m in a.study.models for lb in m.ordered_labels]
    variants = []
    for variant in order:
        if variant not in measured_a or variant not in measured_b:
            continue
        signals = [accuracy_agreement(ca.get(variant, {}), cb.get(variant, {}), alpha)]
        if scored_alike:
            ma, mb = item_metrics(a, variant), item_metrics(b, variant)
            signals += [
                mean_difference(m, ma.get(m, {}), mb.get(m, {}), alpha)
                for m in GENERATION_SIGNALS
                if m in ma or m in mb
            ]
        shown = tuple(s for s in signals if s.n > 0 or s.signal == "accuracy")
        variants.append(VariantAgreement(variant=variant, signals=shown, verdict=_verdict(shown)))
    return RunsAgreement(alpha=alpha, variants=tuple(variants), note=note)
