"""Power analysis: minimum detectable effects and the N needed to confirm equivalence.

MDEs come from ``statsmodels.stats.power.NormalIndPower.solve_power`` (two-sided z-test):
the standardized effect it returns is scaled back by the outcome SD. For two independent
groups of n each this is ``(z_{1-a/2} + z_{power}) * sd * sqrt(2/n)``, which gives 9.0pp at
N=485, p=0.5. Paired designs use the one-sample form (``ratio=0``): ``... * sd_diff / sqrt(n)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower

N_SEARCH_MAX = 1e9


def standardized_mde(
    n: int, alpha: float = 0.05, power: float = 0.8, paired: bool = False
) -> float | None:
    """Smallest detectable standardized effect via ``NormalIndPower().solve_power``.

    Unpaired: two groups of ``n`` (``ratio=1``); paired: one sample of ``n`` differences
    (``ratio=0``). None when ``n < 2``.
    """
    if n < 2:
        return None
    ratio = 0.0 if paired else 1.0
    es = NormalIndPower().solve_power(
        effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=ratio, alternative="two-sided"
    )
    return float(np.asarray(es).item())


def _scaled(n: int, sd: float, alpha: float, power: float, paired: bool) -> float | None:
    es = standardized_mde(n, alpha, power, paired)
    if es is None or not math.isfinite(sd) or sd <= 0.0:
        return None
    return es * sd


def mde_binary_unpaired(
    n: int, p: float = 0.5, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """MDE (proportion difference) for two independent groups of ``n`` at accuracy ``p``.

    Uses the Bernoulli SD ``sqrt(p (1 - p))``; None when it is zero or ``n < 2``.
    """
    return _scaled(n, math.sqrt(max(p * (1.0 - p), 0.0)), alpha, power, paired=False)


def mde_binary_paired(
    n: int, discordance: float, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """McNemar-style MDE for ``n`` paired items with discordant-pair rate ``discordance``.

    Per-item differences are -1/0/+1, whose SD under the null is ``sqrt(discordance)``.
    None when no pair is discordant (the observed data carry no variance to scale by).
    """
    return _scaled(n, math.sqrt(max(discordance, 0.0)), alpha, power, paired=True)


def mde_continuous(
    n: int, sd: float, alpha: float = 0.05, power: float = 0.8, paired: bool = False
) -> float | None:
    """MDE for a continuous metric: ``sd`` is the pooled SD (unpaired) or the SD of the
    per-item differences (paired). None when ``sd`` is zero or ``n < 2``.
    """
    return _scaled(n, sd, alpha, power, paired)


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Pooled sample SD of two groups (numpy, ddof=1 per group); None when undefined."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    dof = xa.size + xb.size - 2
    if xa.size < 1 or xb.size < 1 or dof <= 0:
        return None
    ss = ((xa - xa.mean()) ** 2).sum() + ((xb - xb.mean()) ** 2).sum()
    return math.sqrt(float(ss) / dof)


def sd_of_differences(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Sample SD (ddof=1) of the per-item differences ``b - a``; None when ``n < 2``."""
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diffs.size < 2:
        return None
    return float(np.std(diffs, ddof=1))


def tost_power(
    n: float, delta: float, sd: float, margin: float, alpha: float, paired: bool
) -> float:
    """Normal-approximation TOST power (``scipy.stats.norm``) at ``n`` items per group.

    ``P = Phi((margin - delta)/se - z) + Phi((margin + delta)/se - z) - 1`` with
    ``se = sd * sqrt(k / n)``, ``k = 1`` paired and ``2`` unpaired, ``z = z_{1-alpha}``.
    """
    se = sd * math.sqrt((1.0 if paired else 2.0) / n)
    z = float(sps.norm.ppf(1.0 - alpha))
    upper = float(sps.norm.cdf((margin - delta) / se - z))
    lower = float(sps.norm.cdf((margin + delta) / se - z))
    return max(0.0, upper + lower - 1.0)


def n_for_equivalence(
    delta: float,
    sd: float | None,
    margin: float,
    alpha: float = 0.05,
    power: float = 0.8,
    paired: bool = False,
) -> int | None:
    """Items (per group) needed for TOST at ``±margin`` to reach ``power`` given the observed
    ``delta`` and ``sd``: :func:`tost_power` solved with ``scipy.optimize.brentq``.

    None when ``|delta| >= margin`` (never confirmable) or ``sd`` is unknown; 2 when the
    SD is zero (any two items already settle it).
    """
    if sd is None or not math.isfinite(sd) or abs(delta) >= margin:
        return None
    if sd <= 0.0:
        return 2

    def gap(n: float) -> float:
        return tost_power(n, delta, sd, margin, alpha, paired) - power

    if gap(2.0) >= 0.0:
        return 2
    if gap(N_SEARCH_MAX) < 0.0:
        return None
    root = optimize.brentq(gap, 2.0, N_SEARCH_MAX, xtol=1e-6)
    return math.ceil(float(root) - 1e-9)
