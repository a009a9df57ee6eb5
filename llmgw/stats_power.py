"""How small a difference a suite or an experiment of a given size can detect.

Normal-approximation sample-size formulas (two-sided), used to add an honest note to reports
whose variants are too small to show the difference someone is looking for.
"""

from __future__ import annotations

import math

from llmgw import stats_dist as dist


def _z_sum(alpha: float, power: float) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("alpha and power must be in (0, 1)")
    return dist.norm_ppf(1.0 - alpha / 2.0), dist.norm_ppf(power)


def min_detectable_difference_proportions(n: int, p_base: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest pass-rate difference a two-sided z-test detects with ``n`` cases per arm.

    Solves z_a sqrt(2 pbar qbar / n) + z_b sqrt((p1 q1 + p2 q2) / n) = delta, moving p2 towards
    0.5 (the direction needing the larger delta). ``inf`` if no difference is detectable.
    """
    if n < 1 or not 0.0 <= p_base <= 1.0:
        raise ValueError("need n >= 1 and p_base in [0, 1]")
    z_a, z_b = _z_sum(alpha, power)
    sign, bound = (1.0, 1.0 - p_base) if p_base <= 0.5 else (-1.0, p_base)

    def gap(delta: float) -> float:
        p2 = p_base + sign * delta
        pbar = (p_base + p2) / 2.0
        return (
            z_a * math.sqrt(2.0 * pbar * (1.0 - pbar) / n)
            + z_b * math.sqrt((p_base * (1.0 - p_base) + p2 * (1.0 - p2)) / n)
            - delta
        )

    if gap(bound) > 0:
        return math.inf
    lo, hi = 0.0, bound
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
    return hi


def min_detectable_difference_means(n: int, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean difference a two-sided test detects with ``n`` per arm: (z_a + z_b) sd sqrt(2/n)."""
    if n < 1 or sd < 0:
        raise ValueError("need n >= 1 and sd >= 0")
    z_a, z_b = _z_sum(alpha, power)
    return (z_a + z_b) * sd * math.sqrt(2.0 / n)


def power_note(
    n: int,
    *,
    p_base: float | None = None,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    target: float | None = None,
    metric: str | None = None,
) -> str | None:
    """A report sentence on what ``n`` cases per variant can detect; give ``p_base`` or ``sd``.

    Returns None when ``n < 1``, when ``sd`` is 0 (every score the same: there is no spread to
    size a difference against, and "≥ 0" would say nothing), or when the detectable difference is
    already <= ``target``.
    """
    if (p_base is None) == (sd is None):
        raise ValueError("give exactly one of p_base (pass rates) or sd (mean scores)")
    if n < 1 or sd == 0:
        return None
    if p_base is not None:
        mde = min_detectable_difference_proportions(n, p_base, alpha, power)
        label = metric or "pass rate"
        amount = f"{mde * 100:.0f} points" if mde >= 0.095 else f"{mde * 100:.1f} points"
    else:
        assert sd is not None  # checked above
        mde = min_detectable_difference_means(n, sd, alpha, power)
        label = metric or "mean score"
        amount = f"{mde:.3g}"
    if target is not None and mde <= target:
        return None
    cases = f"{n} case{'s' if n != 1 else ''} per variant"
    tail = f"({power:.0%} power, α={alpha:g})."
    if math.isinf(mde):
        return f"With {cases} this suite cannot reliably detect any difference in {label} {tail}"
    return f"With {cases} this suite can only detect differences of ≥ {amount} in {label} {tail}"
