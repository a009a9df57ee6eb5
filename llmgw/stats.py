"""Statistics for the online A/B reports and the offline eval harness (numpy + stdlib only).

* Online A/B (per-arm mean feedback): :func:`mean_interval`, :func:`welch_t_test`, :func:`cohens_d`;
  for binary outcomes :func:`wilson_interval`, :func:`two_proportion_test`, :func:`cohens_h`.
* Offline evals (both variants run on the same cases, so use paired tests): :func:`mcnemar_exact` for
  pass/fail, :func:`paired_bootstrap` / :func:`wilcoxon_signed_rank` for graded scores,
  :func:`paired_cohens_dz` and :func:`mcnemar_odds_ratio` for effect sizes.
* Many metrics or suites at once: :func:`holm`. Before trusting a "no difference": :func:`power_note`.

Degenerate inputs: too few values for a statistic raise ``ValueError``; identical arms give p = 1.
Distribution functions (normal, t, binomial, signed-rank) live in :mod:`llmgw.stats_dist`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from llmgw import stats_dist as dist

__all__ = [
    "Interval",
    "TestResult",
    "bootstrap_mean_interval",
    "cohens_d",
    "cohens_h",
    "holm",
    "mcnemar_exact",
    "mcnemar_odds_ratio",
    "mean_interval",
    "min_detectable_difference_means",
    "min_detectable_difference_proportions",
    "paired_bootstrap",
    "paired_cohens_dz",
    "power_note",
    "two_proportion_test",
    "welch_t_test",
    "wilcoxon_signed_rank",
    "wilson_interval",
]

Values = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[low, high]`` around a point ``estimate``."""

    low: float
    high: float
    estimate: float


@dataclass(frozen=True)
class TestResult:
    """A two-sided test: ``difference`` is the effect (A minus B), ``interval`` its CI when available."""

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float
    df: float | None
    difference: float
    interval: Interval | None
    method: str


# --- helpers -------------------------------------------------------------------------------------


def _array(values: Values, name: str, min_size: int = 1) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if x.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} value(s), got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains nan or inf")
    return x


def _paired(a: Values, b: Values, min_size: int = 1) -> np.ndarray:
    x, y = _array(a, "a", min_size), _array(b, "b", min_size)
    if x.size != y.size:
        raise ValueError(f"paired samples need equal lengths, got {x.size} and {y.size}")
    return x - y


def _upper(confidence: float) -> float:
    """The upper quantile level 0.5 + confidence / 2 of a two-sided interval."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return 0.5 + confidence / 2.0


def _z(confidence: float) -> float:
    """Two-sided normal critical value, e.g. 1.96 for 0.95."""
    return dist.norm_ppf(_upper(confidence))


def _bootstrap_means(x: np.ndarray, n_resamples: int, seed: int | None) -> np.ndarray:
    """Means of ``n_resamples`` with-replacement resamples of ``x``, in memory-bounded chunks."""
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // x.size)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        out[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    return out


# --- intervals -----------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a pass rate; unlike the Wald interval it behaves at 0/n and n/n.

    ``n == 0`` gives ``Interval(0, 1, nan)``: nothing is known.
    """
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    z = _z(confidence)
    if n == 0:
        return Interval(0.0, 1.0, math.nan)
    p = successes / n
    denom = 2.0 * (n + z * z)
    center = (2.0 * n * p + z * z) / denom
    delta = z / denom * math.sqrt(4.0 * n * p * (1.0 - p) + z * z)
    low = 0.0 if successes == 0 else center - delta
    high = 1.0 if successes == n else center + delta
    return Interval(low, high, p)


def mean_interval(values: Values, confidence: float = 0.95) -> Interval:
    """Student-t interval for a mean (per-arm mean feedback); needs >= 2 values."""
    x = _array(values, "values", 2)
    q = _upper(confidence)
    mean, se = float(x.mean()), float(x.std(ddof=1)) / math.sqrt(x.size)
    half = dist.t_ppf(q, x.size - 1) * se if se > 0 else 0.0
    return Interval(mean - half, mean + half, mean)


def bootstrap_mean_interval(
    values: Values,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int | None = 0,
    method: Literal["percentile", "bca"] = "percentile",
) -> Interval:
    """Bootstrap CI for a mean when scores are skewed or bounded (e.g. 0-1 judge scores).

    ``method="bca"`` adds bias correction and acceleration (jackknife), like scipy's ``BCa``.
    Deterministic for a fixed ``seed``; all-equal values give a zero-width interval.
    """
    x = _array(values, "values", 1)
    z = _z(confidence)
    if method not in ("percentile", "bca") or n_resamples < 1:
        raise ValueError(f"need method 'percentile' or 'bca' and n_resamples >= 1, got {method!r}")
    mean = float(x.mean())
    if np.all(x == x[0]):
        return Interval(mean, mean, mean)
    boot = _bootstrap_means(x, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    q_low, q_high = alpha, 1.0 - alpha
    if method == "bca":
        frac = (np.count_nonzero(boot < mean) + np.count_nonzero(boot <= mean)) / (2.0 * boot.size)
        z0 = dist.norm_ppf(min(max(frac, 0.5 / boot.size), 1.0 - 0.5 / boot.size))
        u = (x.sum() - x) / (x.size - 1)  # jackknife means
        u = u.mean() - u
        accel = float((u**3).sum() / (6.0 * (u**2).sum() ** 1.5))
        q_low = dist.norm_cdf(z0 + (z0 - z) / (1.0 - accel * (z0 - z)))
        q_high = dist.norm_cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    low, high = np.quantile(boot, [q_low, q_high])
    return Interval(float(low), float(high), mean)


# --- two-sample tests ----------------------------------------------------------------------------


def welch_t_test(a: Values, b: Values, confidence: float = 0.95) -> TestResult:
    """Welch's t-test (unequal variances) of mean(a) - mean(b): the online A/B comparison.

    Needs >= 2 values per arm (``ValueError`` otherwise). Constant identical arms give t = 0, p = 1,
    ``df = nan``; constant different arms give t = +-inf, p = 0.
    """
    x, y = _array(a, "a", 2), _array(b, "b", 2)
    q = _upper(confidence)
    diff = float(x.mean() - y.mean())
    va, vb = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        stat = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0.0 else 0.0
        return TestResult(stat, p, math.nan, diff, Interval(diff, diff, diff), "welch")
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    stat = diff / se
    half = dist.t_ppf(q, df) * se
    p = min(1.0, 2.0 * dist.t_sf(abs(stat), df))
    return TestResult(stat, p, df, diff, Interval(diff - half, diff + half, diff), "welch")


def two_proportion_test(success_a: int, n_a: int, success_b: int, n_b: int, confidence: float = 0.95) -> TestResult:
    """Pass-rate difference p_a - p_b: pooled two-sided z-test, Newcombe (Wilson-based) interval.

    For unpaired arms (online traffic split). For the same cases under both variants use McNemar.
    """
    if n_a < 1 or n_b < 1:
        raise ValueError("each arm needs n >= 1")
    wa, wb = wilson_interval(success_a, n_a, confidence), wilson_interval(success_b, n_b, confidence)
    pa, pb = wa.estimate, wb.estimate
    diff = pa - pb
    low = diff - math.sqrt((pa - wa.low) ** 2 + (wb.high - pb) ** 2)
    high = diff + math.sqrt((wa.high - pa) ** 2 + (pb - wb.low) ** 2)
    pooled = (success_a + success_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    stat = diff / se if se > 0 else 0.0
    return TestResult(
        stat,
        min(1.0, 2.0 * dist.norm_sf(abs(stat))),
        None,
        diff,
        Interval(low, high, diff),
        "pooled z, Newcombe interval",
    )


# --- paired tests --------------------------------------------------------------------------------


def mcnemar_exact(b: int, c: int, *, mid_p: bool = False, confidence: float = 0.95) -> TestResult:
    """Exact McNemar test for paired pass/fail: ``b`` = cases only A passes, ``c`` = only B passes.

    Two-sided binomial test of b ~ Bin(b + c, 1/2) (= ``scipy.stats.binomtest(b, b+c).pvalue``);
    ``mid_p=True`` subtracts half the observed point mass (less conservative, not exact).
    ``statistic`` and ``interval`` (Wilson) are for b / (b + c); ``difference`` is b - c.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    n = b + c
    if n == 0:
        return TestResult(math.nan, 1.0, None, 0.0, wilson_interval(0, 0, confidence), "mcnemar exact")
    p = dist.binom_test_pvalue(b, n, 0.5)
    if mid_p:
        p = min(1.0, 2.0 * dist.binom_cdf(min(b, c), n, 0.5) - dist.binom_pmf(min(b, c), n, 0.5))
    return TestResult(
        b / n, p, None, float(b - c), wilson_interval(b, n, confidence), "mcnemar mid-p" if mid_p else "mcnemar exact"
    )


def paired_bootstrap(
    a: Values, b: Values, n_resamples: int = 10_000, seed: int | None = 0, confidence: float = 0.95
) -> TestResult:
    """Mean of paired differences a - b with a percentile CI and a two-sided bootstrap p-value.

    For graded eval scores on the same cases. The p-value re-centres the bootstrap distribution on
    the null: ``(1 + #|mean* - mean| >= |mean|) / (n_resamples + 1)``, so it is never 0.
    """
    d = _paired(a, b)
    _upper(confidence)
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    diff = float(d.mean())
    boot = np.full(n_resamples, diff) if np.all(d == d[0]) else _bootstrap_means(d, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    extreme = np.count_nonzero(np.abs(boot - diff) >= abs(diff))
    p = (1.0 + extreme) / (boot.size + 1.0)
    return TestResult(diff, p, None, diff, Interval(float(low), float(high), diff), "paired bootstrap")


def _average_ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks 1..n with ties averaged, and the size of every tie group."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    counts = np.diff(np.r_[starts, x.size])
    avg = starts + (counts + 1) / 2.0
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(avg, counts)
    return ranks, counts


def wilcoxon_signed_rank(a: Values, b: Values, method: Literal["auto", "exact", "approx"] = "auto") -> TestResult:
    """Wilcoxon signed-rank test of paired scores a vs b (robust alternative to the paired t-test).

    Zero differences are dropped (Wilcox); tied |d| get average ranks. ``auto``: exact null
    distribution when <= 25 non-zero differences and no ties, else the normal approximation with
    tie and continuity corrections (= scipy ``wilcoxon(method="exact" | "approx", correction=True)``).
    ``statistic`` is min(W+, W-); ``difference`` is the median paired difference. All-zero
    differences give p = 1.
    """
    d_all = _paired(a, b)
    d = d_all[d_all != 0]
    n, diff = d.size, float(np.median(d_all))
    if n == 0:
        return TestResult(0.0, 1.0, None, diff, None, "all differences zero")
    ranks, ties = _average_ranks(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    stat = min(w_plus, n * (n + 1) / 2.0 - w_plus)
    has_ties = bool(np.any(ties > 1))
    if method == "exact" and has_ties:
        raise ValueError("the exact signed-rank distribution assumes no tied |differences|")
    if method == "exact" or (method == "auto" and n <= 25 and not has_ties):
        pmf = dist.signed_rank_pmf(n)
        k = round(w_plus)
        p = min(1.0, 2.0 * min(float(pmf[k:].sum()), float(pmf[: k + 1].sum())))
        return TestResult(stat, p, None, diff, None, "wilcoxon exact")
    if method not in ("auto", "approx"):
        raise ValueError(f"unknown method {method!r}")
    se = math.sqrt((n * (n + 1) * (2 * n + 1) - float((ties**3 - ties).sum()) / 2.0) / 24.0)
    z = (w_plus - n * (n + 1) / 4.0) / se
    z -= math.copysign(0.5 / se, z) if z != 0 else 0.0
    return TestResult(stat, min(1.0, 2.0 * dist.norm_sf(abs(z))), None, diff, None, "wilcoxon normal approx")


# --- multiple comparisons ------------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given): compare each with alpha directly.

    Use when a report tests several metrics/suites at once; controls the family-wise error rate.
    """
    p = np.asarray(p_values, dtype=float)
    if p.size and not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p-values must be in [0, 1]")
    order = np.argsort(p, kind="mergesort")
    scaled = (p.size - np.arange(p.size)) * p[order]
    adjusted = np.empty(p.size)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return [float(v) for v in adjusted]


# --- effect sizes --------------------------------------------------------------------------------


def cohens_d(a: Values, b: Values) -> float:
    """Standardized mean difference (mean(a) - mean(b)) / pooled SD for two independent arms.

    Zero pooled SD gives 0 for equal means and +-inf otherwise.
    """
    x, y = _array(a, "a", 1), _array(b, "b", 1)
    if x.size + y.size < 3:
        raise ValueError("cohens_d needs at least 3 values in total")
    diff = float(x.mean() - y.mean())
    ss = float(((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum())
    sd = math.sqrt(ss / (x.size + y.size - 2))
    return diff / sd if sd > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))


def paired_cohens_dz(a: Values, b: Values) -> float:
    """Paired effect size d_z = mean(a - b) / sd(a - b) for evals on the same cases."""
    d = _paired(a, b, 2)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    return mean / sd if sd > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))


def cohens_h(p1: float, p2: float) -> float:
    """Effect size for two proportions, 2 asin(sqrt p1) - 2 asin(sqrt p2) (0.2 small, 0.8 large)."""
    for p in (p1, p2):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"proportion must be in [0, 1], got {p!r}")
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2))


def mcnemar_odds_ratio(b: int, c: int, confidence: float = 0.95) -> Interval:
    """Paired odds ratio b / c with a log-scale Wald interval; Haldane +0.5 when a cell is 0."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    bb, cc = (b + 0.5, c + 0.5) if b == 0 or c == 0 else (float(b), float(c))
    half = _z(confidence) * math.sqrt(1.0 / bb + 1.0 / cc)
    log_or = math.log(bb / cc)
    return Interval(math.exp(log_or - half), math.exp(log_or + half), bb / cc)


# --- power ---------------------------------------------------------------------------------------


# Power and minimum detectable effects live in llmgw/stats_power.py (re-exported here).
from llmgw.stats_power import (  # noqa: E402
    min_detectable_difference_means,
    min_detectable_difference_proportions,
    power_note,
)
