"""Fast checks of the pure divergence functions on hand-made and random distributions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantmatrix.runlog import KldRow
from quantmatrix.scoring import divergence as dv


def test_log_softmax_normalises() -> None:
    lp = dv.log_softmax([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    assert np.allclose(np.exp(lp).sum(axis=-1), 1.0)
    assert np.allclose(lp[1], math.log(1 / 3))


def test_kl_hand_made() -> None:
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert dv.kl_probs(p, q) == pytest.approx(expected)
    assert dv.kl_logprobs(np.log(p), np.log(q)) == pytest.approx(expected)
    # zero-probability terms of P contribute nothing; Q = 0 where P > 0 is infinite
    assert dv.kl_probs([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert math.isinf(float(dv.kl_probs([0.5, 0.5], [1.0, 0.0])))


def test_self_kl_is_zero() -> None:
    rng = np.random.default_rng(1)
    lp = dv.log_softmax(rng.normal(size=(5, 100)) * 3)
    assert np.all(dv.kl_logprobs(lp, lp) == 0.0)
    assert np.all(dv.kl_probs(np.exp(lp), np.exp(lp)) == 0.0)
    assert np.all(dv.kl_topk(dv.topk_compress(lp, 8), lp) < 1e-12)


def test_entropy() -> None:
    assert dv.entropy_probs([0.25] * 4) == pytest.approx(math.log(4))
    assert dv.entropy_logprobs([math.log(0.5), math.log(0.5), -math.inf]) == pytest.approx(
        math.log(2)
    )
    assert dv.entropy_probs([1.0, 0.0]) == 0.0


def test_agreement_and_perplexity() -> None:
    assert dv.argmax_agreement([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert dv.argmax_agreement(["A", "B"], ["A", "C"]) == 0.5
    with pytest.raises(ValueError):
        dv.argmax_agreement([1], [1, 2])
    assert dv.perplexity(np.log([0.5, 0.5])) == pytest.approx(2.0)
    assert dv.ppl_ratio(np.log([0.25, 0.25]), np.log([0.5, 0.5])) == pytest.approx(2.0)


def test_topk_compress_layout() -> None:
    lp = np.log([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    top = dv.topk_compress(lp, 2)
    assert top.ids.tolist() == [[1, 2], [2, 0]]
    assert np.allclose(np.exp(top.rest_logmass), [0.1, 0.2])
    assert top.k == 2 and top.top1.tolist() == [1, 2]
    assert top.nbytes() == 2 * 2 * 4 + 2 * 2 * 4 + 2 * 4


def test_topk_full_k_is_exact() -> None:
    rng = np.random.default_rng(2)
    lp, lq = (dv.log_softmax(rng.normal(size=(4, 50))) for _ in range(2))
    exact = dv.kl_logprobs(lp, lq)
    assert np.allclose(dv.kl_topk(dv.topk_compress(lp, 50), lq), exact, atol=1e-6)


@pytest.mark.parametrize("k", [1, 8, 32])
def test_topk_lower_bound_within_stated_gap(k: int) -> None:
    """0 <= KL - KL_k <= r_P * (max_tail log(p/q) - log(r_P/r_Q)) on random peaked logits."""
    rng = np.random.default_rng(k)
    logits = rng.normal(size=(64, 2000)) * 3.0
    lp = dv.log_softmax(logits)
    lq = dv.log_softmax(logits + rng.normal(size=logits.shape) * 0.3)
    exact = dv.kl_logprobs(lp, lq)
    approx = dv.kl_topk(dv.topk_compress(lp, k), lq)
    gap = exact - approx
    assert np.all(gap >= -1e-6)  # float32 storage of the top-k log-probs
    assert np.all(gap <= dv.topk_gap_bound(lp, lq, k) + 1e-6)


def test_topk_close_on_realistically_peaked_rows() -> None:
    """With LLM-like peaked rows (top-32 holding most of the mass) KL_32 is within 5 %."""
    rng = np.random.default_rng(7)
    logits = rng.standard_t(df=3, size=(128, 4000)) * 2.5
    lp = dv.log_softmax(logits)
    lq = dv.log_softmax(logits + rng.normal(size=logits.shape) * 0.2)
    exact = float(dv.kl_logprobs(lp, lq).mean())
    approx = float(dv.kl_topk(dv.topk_compress(lp, 32), lq).mean())
    assert approx <= exact + 1e-9
    assert approx == pytest.approx(exact, rel=0.05)


def test_tail_samples_unbiased_where_the_bound_is_loose() -> None:
    """High-entropy rows: KL_32 misses much of the KL; top-32 + 32 tail samples does not."""
    rng = np.random.default_rng(11)
    logits = rng.normal(size=(400, 3000)) * 1.5
    lp = dv.log_softmax(logits)
    lq = dv.log_softmax(logits + rng.normal(size=logits.shape) * 0.3)
    exact = float(dv.kl_logprobs(lp, lq).mean())
    top = dv.topk_compress(lp, 32, tail_samples=32, rng=np.random.default_rng(0))
    assert top.m == 32 and top.tail_ids is not None
    assert not (top.tail_ids[:, :, None] == top.ids[:, None, :]).any()  # outside the top k
    bound = float(dv.kl_topk(top, lq, sampled=False).mean())
    sampled = float(dv.kl_topk(top, lq).mean())
    assert bound < 0.8 * exact
    assert sampled == pytest.approx(exact, rel=0.03)
    assert np.all(dv.kl_topk(top, lp) == 0.0)  # self-KL stays exactly 0


def test_topk_rows_and_concat() -> None:
    lp = dv.log_softmax(np.random.default_rng(4).normal(size=(10, 100)))
    top = dv.topk_compress(lp, 4, tail_samples=3)
    again = dv.TopK.concat([top.rows(slice(0, 6)), top.rows(slice(6, 10))])
    assert all(np.array_equal(a, again.arrays()[n]) for n, a in top.arrays().items())
    assert top.nbytes() == 10 * (4 * 8 + 4 + 3 * 8)
    assert np.array_equal(top.tail_ids, dv.topk_compress(lp, 4, tail_samples=3).tail_ids)


def test_f16_rows_round_trip() -> None:
    rng = np.random.default_rng(3)
    lp = dv.log_softmax(rng.normal(size=(16, 1000)) * 3)
    back = dv.from_f16_rows(dv.f16_rows(lp))
    assert np.allclose(np.exp(back).sum(axis=-1), 1.0)
    assert float(np.max(dv.kl_logprobs(lp, back))) < 1e-5
    assert np.array_equal(np.argmax(back, axis=-1), np.argmax(lp, axis=-1))


# --- analysis and report, on hand-made log rows ---------------------------------------------


def _letter(variant: str, item: str, dist: list[float], gold: str = "A") -> dict[str, Any]:
    pred = "AB"[int(np.argmax(dist))]
    return {"kind": "letterprob", "variant": variant, "model": "m", "level": variant[2:],
            "baseline": "m@F16", "item": item, "dist": dist, "probs": dist, "letter_mass": 1.0,
            "pred": pred, "gold": gold, "p_gold": dist[0], "correct": pred == gold,
            "entropy": float(dv.entropy_probs(dist))}  # fmt: skip


def _kld(variant: str, kl: list[float], same: int, nll: float) -> KldRow:
    return KldRow(variant=variant, model="m", level=variant[2:], baseline="m@F16",
                  corpus_sha256="c", corpus_source="items", chunk=0, n_tokens=len(kl),
                  kl=tuple(kl), kl_topk=tuple(kl), kl_method="top32", same_top=same,
                  n_targets=len(kl), nll_sum=nll, base_nll_sum=2.0 * len(kl))  # fmt: skip


LETTER_ROWS = [
    _letter("m@F16", "1", [0.8, 0.2]),
    _letter("m@F16", "2", [0.6, 0.4]),
    _letter("m@Q4_K_M", "1", [0.7, 0.3]),
    _letter("m@Q4_K_M", "2", [0.4, 0.6]),
]
KLD_ROWS = [
    _kld("m@F16", [0.0, 0.0], 2, 4.0),
    _kld("m@Q8_0", [0.001, 0.003], 2, 4.01),
    _kld("m@Q4_K_M", [0.01, 0.03], 1, 4.2),
    _kld("m@Q2_K", [0.5, 1.5], 0, 6.0),
]


def test_letter_summary() -> None:
    from quantmatrix.analysis.divergence import letter_summary

    out = letter_summary(LETTER_ROWS, n_boot=500, seed=1)
    q4 = out["m@Q4_K_M"]
    kls = [float(dv.kl_probs([0.8, 0.2], [0.7, 0.3])), float(dv.kl_probs([0.6, 0.4], [0.4, 0.6]))]
    assert q4.letter_kl_mean == pytest.approx(np.mean(kls))
    lo, hi = q4.letter_kl_ci
    assert min(kls) <= lo <= hi <= max(kls)
    assert q4.argmax_agreement == 0.5 and q4.expected_accuracy == pytest.approx(0.55)
    assert out["m@F16"].letter_kl_mean == 0.0
    assert letter_summary(LETTER_ROWS, n_boot=500, seed=1) == out  # seeded bootstrap


def test_kld_summary_and_cliff() -> None:
    from quantmatrix.analysis.divergence import cliff_agreement, summarize_divergence

    div = summarize_divergence(LETTER_ROWS, KLD_ROWS, n_boot=100)
    assert div.order == ("m@F16", "m@Q8_0", "m@Q4_K_M", "m@Q2_K")
    q2 = div.variants["m@Q2_K"].tokens
    assert q2.kld_mean == pytest.approx(1.0) and q2.same_top == 0.0
    assert q2.ppl_ratio == pytest.approx(math.exp(1.0))
    assert div.variants["m@F16"].tokens.ppl_ratio == 1.0
    deltas = {"m@Q8_0": 0.0, "m@Q4_K_M": -0.01, "m@Q2_K": -0.2}
    cliff = cliff_agreement(div, deltas)["m"]
    assert cliff.levels == ("Q8_0", "Q4_K_M", "Q2_K")
    assert cliff.divergence_cliff == "Q2_K" and cliff.accuracy_cliff == "Q2_K"
    assert cliff.agree and cliff.spearman == pytest.approx(1.0)
    late = cliff_agreement(div, {**deltas, "m@Q4_K_M": -0.19})["m"]
    assert late.accuracy_cliff == "Q4_K_M" and not late.agree


def test_markdown_and_deterministic_plot(tmp_path: Path) -> None:
    from quantmatrix.analysis.divergence import cliff_agreement, summarize_divergence
    from quantmatrix.report.divergence_md import plot_kld_vs_accuracy, render_divergence_md

    div = summarize_divergence(LETTER_ROWS, KLD_ROWS, n_boot=100)
    deltas = {"m@Q8_0": 0.0, "m@Q4_K_M": -0.01, "m@Q2_K": -0.2}
    md = render_divergence_md(div, cliff_agreement(div, deltas))
    assert "| m@Q2_K | 2 | 1 |" in md and "Do KLD and accuracy agree" in md
    a = plot_kld_vs_accuracy(div, deltas, tmp_path / "a.png").read_bytes()
    b = plot_kld_vs_accuracy(div, deltas, tmp_path / "b.png").read_bytes()
    assert a == b and a.startswith(b"\x89PNG")
    svg = plot_kld_vs_accuracy(div, deltas, tmp_path / "c.svg").read_text()
    assert "<dc:date>" not in svg
