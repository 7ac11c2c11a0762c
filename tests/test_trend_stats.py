"""The long-context statistics against simulations with a known truth.

Per-position KL is simulated as a long-context run produces it: a document effect (some texts
are harder for every level), autocorrelated noise along the document (AR(1), phi 0.98: a hard
passage stays hard for about fifty tokens), and a profile over positions that is either flat
(the truth: no change with context) or growing. The rows are built as the phase writes them and
read by the analysis's own ``trend``: a flat profile's interval covers 0 about 95% of the time,
an interval over tokens does not come close, and a growing profile is found."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import signal
from scipy import stats as sps

from quantmatrix.analysis.long_context import trend
from quantmatrix.analysis.stats.trend import (
    cluster_slope,
    mean_interval,
    padded_mean_interval,
    paired_change,
    verdict,
)
from quantmatrix.runlog import LongContextRow

BOUNDS = ((0, 512), (512, 2048), (2048, 4096))
N, BLOCK, DOCS = 4096, 128, 8


def simulate(rng: np.random.Generator, profile: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(DOCS, N) per-position KL."""
    doc = rng.lognormal(0.0, 0.5, size=(DOCS, 1))
    shocks = rng.normal(size=(DOCS, N)) * np.sqrt(1 - 0.98**2)
    ar = signal.lfilter([1.0], [1.0, -0.98], shocks, axis=1)
    return 0.01 * doc * profile(np.arange(N)) * np.exp(0.5 * ar - 0.125)


def rows_of(kl: np.ndarray) -> list[LongContextRow]:
    out = []
    for d, series in enumerate(kl):
        for b, (start, end) in enumerate(BOUNDS):
            part = series[start:end]
            blocks = tuple(float(part[i : i + BLOCK].mean()) for i in range(0, part.size, BLOCK))
            out.append(LongContextRow(
                variant="m@Q4_K_M", model="m", level="Q4_K_M", baseline="m@F16",
                corpus_sha256="c", corpus_source="sim", document=d, document_id=f"d{d}",
                document_tokens=N, bucket=b, start=start, end=end, n_tokens=part.size,
                kl_method="exact", kl_sum=float(part.sum()), kl_topk_sum=float(part.sum()),
                kl_max=float(part.max()), same_top=part.size, n_targets=part.size, nll_sum=0.0,
                base_nll_sum=0.0, block_tokens=BLOCK, kl_block_means=blocks, restart_tokens=0,
                restart_kl_sum=0.0, restart_full_kl_sum=0.0, eval_s=0.0,
            ))  # fmt: skip
    return out


def flat(pos: np.ndarray) -> np.ndarray:
    return np.ones_like(pos, dtype=float)


def growing(pos: np.ndarray) -> np.ndarray:
    return 1.0 + pos / 2048.0  # KL x2 at position 2048, x3 at the end


def naive_covers(kl: np.ndarray) -> bool:
    """A Welch interval over tokens (last bucket vs first), as if positions were independent."""
    first, last = kl[:, 0:512].ravel(), kl[:, 2048:4096].ravel()
    res = sps.ttest_ind(last, first, equal_var=False)
    low, high = res.confidence_interval(0.95)
    return bool(low <= 0.0 <= high)


def test_a_flat_profile_is_covered_at_the_nominal_rate_and_a_token_interval_is_not() -> None:
    rng = np.random.default_rng(11)
    reps = 400
    change_covers = slope_covers = naive = 0
    for _ in range(reps):
        kl = simulate(rng, flat)
        t = trend(rows_of(kl))
        assert t is not None and t.change.low is not None and t.change.high is not None
        change_covers += t.change.low <= 0.0 <= t.change.high
        s = t.slope_per_doubling
        assert s.low is not None and s.high is not None
        slope_covers += s.low <= 0.0 <= s.high
        naive += naive_covers(kl)
    # 95% nominal; +-3 binomial standard deviations of 400 draws is +-3.3 points
    assert 0.91 <= change_covers / reps <= 0.99
    assert 0.89 <= slope_covers / reps <= 0.99
    assert naive / reps < 0.6  # why the document is the unit


def test_a_growing_profile_is_found() -> None:
    rng = np.random.default_rng(12)
    reps = 100
    found = []
    for _ in range(reps):
        t = trend(rows_of(simulate(rng, growing)))
        assert t is not None
        found.append(t.verdict == "grows" and (t.slope_per_doubling.low or 0.0) > 0)
    assert np.mean(found) > 0.9


def test_mean_interval_is_the_t_interval() -> None:
    x = [0.9, 1.4, 1.1, 0.7, 1.3]
    e = mean_interval(x)
    half = sps.t.ppf(0.975, 4) * np.std(x, ddof=1) / np.sqrt(5)
    assert e.value == pytest.approx(1.08) and e.n == 5
    assert (e.low, e.high) == pytest.approx((1.08 - half, 1.08 + half))
    assert mean_interval([2.0]).low is None and mean_interval([]).n == 0
    assert mean_interval([3.0, 3.0, 3.0]).low == 3.0  # no spread: no width


def test_paired_change_and_verdicts() -> None:
    up = paired_change([1.0, 2.0, 3.0, 4.0], [1.5, 2.6, 3.4, 4.5])
    assert up.value == pytest.approx(0.5) and verdict(up) == "grows"
    down = paired_change([1.0, 2.0, 3.0], [0.5, 1.4, 2.6])
    assert verdict(down) == "falls"
    assert verdict(paired_change([1.0, 2.0, 3.0], [1.2, 1.7, 3.1])) == "no change detected"
    assert verdict(paired_change([1.0], [2.0])) == "no interval (one document)"
    with pytest.raises(ValueError, match="differ in length"):
        paired_change([1.0], [1.0, 2.0])


def test_cluster_slope_over_documents() -> None:
    x = np.tile(np.arange(10.0), 3)
    groups = list(np.repeat([0, 1, 2], 10))
    y = 0.5 + 0.25 * x + np.repeat([0.0, 1.0, -1.0], 10)  # document effects, one slope
    exact = cluster_slope(list(y), list(x), groups)
    assert exact.value == pytest.approx(0.25) and exact.n == 3
    assert exact.low == pytest.approx(0.25) and exact.high == pytest.approx(0.25)
    noisy = y + np.random.default_rng(3).normal(size=y.size) * 0.1
    e = cluster_slope(list(noisy), list(x), groups)
    assert e.low is not None and e.high is not None and e.low < 0.25 < e.high
    one = cluster_slope(list(y[:10]), list(x[:10]), [0] * 10)
    assert one.low is None and one.value == pytest.approx(0.25)


def test_padded_interval_is_never_zero_width_and_covers_by_simulation() -> None:
    flat = padded_mean_interval([0.0] * 8, 100.0)
    assert flat.value == 0.0 and flat.low is not None and flat.high is not None
    assert flat.low < 0 < flat.high
    assert padded_mean_interval([50.0], 100.0).low is None
    # per-question differences of differences of binary answers, true mean 0: covered at
    # least at the nominal rate (the padding only widens)
    rng = np.random.default_rng(5)
    covered = []
    for _ in range(400):
        a, b, c, d = rng.random((4, 30)) < np.array([[0.6], [0.5], [0.6], [0.5]])
        diffs = 100.0 * ((a.astype(int) - b) - (c.astype(int) - d))
        e = padded_mean_interval(list(diffs), 100.0)
        assert e.low is not None and e.high is not None
        covered.append(e.low <= 0.0 <= e.high)
    assert np.mean(covered) >= 0.93
