"""Distribution functions for :mod:`llmgw.stats`, in pure Python + numpy (no scipy at runtime).

Normal cdf/ppf, Student t cdf/ppf, the binomial pmf/cdf/sf with the exact two-sided binomial test,
and the exact Wilcoxon signed-rank null distribution. Scalar functions take and return floats. Relative
accuracy (checked against scipy in ``tests/test_stats.py``): normal ~1e-15, Student t ~1e-13 for any
df (tails included), binomial ~n * 1e-15 (log-gamma cancellation).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "betainc",
    "binom_cdf",
    "binom_logpmf",
    "binom_pmf",
    "binom_sf",
    "binom_test_pvalue",
    "norm_cdf",
    "norm_pdf",
    "norm_ppf",
    "norm_sf",
    "signed_rank_pmf",
    "t_cdf",
    "t_pdf",
    "t_ppf",
    "t_sf",
]

_SQRT2 = math.sqrt(2.0)
_EPS = 1e-16
_TINY = 1e-300


def _check_prob(p: float) -> None:
    if not 0.0 <= p <= 1.0:  # also rejects nan
        raise ValueError(f"probability must be in [0, 1], got {p!r}")


def _check_df(df: float) -> None:
    if not df > 0:  # also rejects nan
        raise ValueError(f"degrees of freedom must be > 0, got {df!r}")


# --- normal ------------------------------------------------------------------------------------


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def norm_cdf(x: float) -> float:
    """Standard normal P(Z <= x); erfc keeps full relative accuracy in the lower tail."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_sf(x: float) -> float:
    """Standard normal P(Z > x); use instead of ``1 - norm_cdf`` for upper-tail p-values."""
    return 0.5 * math.erfc(x / _SQRT2)


def _poly(coefs: tuple[float, ...], x: float) -> float:
    """Horner evaluation; ``coefs`` are ordered from the constant term up."""
    acc = 0.0
    for c in reversed(coefs):
        acc = acc * x + c
    return acc


# Wichura (1988), Algorithm AS241 (PPND16): ~1e-16 relative accuracy.
_A = (
    3.3871328727963666080e0,
    1.3314166789178437745e2,
    1.9715909503065514427e3,
    1.3731693765509461125e4,
    4.5921953931549871457e4,
    6.7265770927008700853e4,
    3.3430575583588128105e4,
    2.5090809287301226727e3,
)
_B = (
    1.0,
    4.2313330701600911252e1,
    6.8718700749205790830e2,
    5.3941960214247511077e3,
    2.1213794301586595867e4,
    3.9307895800092710610e4,
    2.8729085735721942674e4,
    5.2264952788528545610e3,
)
_C = (
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
)
_D = (
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)
_E = (
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
)
_F = (
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)


def norm_ppf(p: float) -> float:
    """Standard normal quantile (AS241); ``norm_ppf(0.975)`` is the usual 1.959964 critical value."""
    _check_prob(p)
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _poly(_A, r) / _poly(_B, r)
    r = math.sqrt(-math.log(p if q < 0 else 1.0 - p))
    x = _poly(_C, r - 1.6) / _poly(_D, r - 1.6) if r <= 5.0 else _poly(_E, r - 5.0) / _poly(_F, r - 5.0)
    return -x if q < 0 else x


# --- regularized incomplete beta -----------------------------------------------------------------


def _beta_cf(a: float, b: float, x: float, y: float) -> float:
    """Continued fraction for I_x(a, b) / (x^a y^b / B(a, b)), valid for x <= a / (a + b).

    DiDonato & Morris (1992, TOMS 708, BFRAC), evaluated by the modified Lentz method. Its terms use
    lambda = a - (a + b) x computed from whichever of x, y = 1 - x is small, so x near 1 with a huge
    ``a`` (Student t with large df) loses no precision, unlike the textbook (Numerical Recipes) fraction.
    """
    lam = (a + b) * y - b if a > b else a - (a + b) * x
    c, c0, c1, yp1 = 1.0 + lam, b / a, 1.0 + 1.0 / a, y + 1.0
    p, s = 1.0, a + 1.0
    f = c / c1  # f = beta_0 + alpha_1 / (beta_1 + alpha_2 / (beta_2 + ...)); the fraction is 1 / f
    cc, dd = f, 0.0
    for n in range(1, 100_000):
        t, w, e = n / a, n * (b - n) * x, a / s
        alpha = p * (p + c0) * e * e * (w * x)
        beta = n + w / s + (1.0 + t) / (c1 + t + t) * (c + n * yp1)
        p, s = 1.0 + t, s + 2.0
        dd = beta + alpha * dd
        dd = 1.0 / (dd if abs(dd) > _TINY else _TINY)
        cc = beta + alpha / cc
        cc = cc if abs(cc) > _TINY else _TINY
        delta = cc * dd
        f *= delta
        if abs(delta - 1.0) <= 2 * _EPS:
            return 1.0 / f
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def _stirling_delta(z: float) -> float:
    """lgamma(z) - ((z - 1/2) log z - z + log(2 pi) / 2) for z >= 10 (Stirling series, ~1e-16)."""
    w = 1.0 / (z * z)
    series = 1 / 1260 + w * (-1 / 1680 + w * (1 / 1188 - w * 691 / 360360))
    return (1 / 12 + w * (-1 / 360 + w * series)) / z


def _lbeta(a: float, b: float) -> float:
    """log B(a, b) without the cancellation of lgamma(a) - lgamma(a + b) for one large argument."""
    small, big = min(a, b), max(a, b)
    if big < 10.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    ratio = -(big - 0.5) * math.log1p(small / big) - small * math.log(big + small) + small
    return math.lgamma(small) + ratio + _stirling_delta(big) - _stirling_delta(big + small)


def betainc(a: float, b: float, x: float, y: float | None = None) -> float:
    """Regularized incomplete beta I_x(a, b).

    Pass ``y = 1 - x`` computed independently when x is close to 1, so no precision is lost.
    """
    if y is None:
        y = 1.0 - x
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_x = math.log1p(-y) if x > 0.5 else math.log(x)
    log_y = math.log1p(-x) if y > 0.5 else math.log(y)
    front = math.exp(a * log_x + b * log_y - _lbeta(a, b))
    if x <= a / (a + b):
        return front * _beta_cf(a, b, x, y)
    return 1.0 - front * _beta_cf(b, a, y, x)


# --- Student t -----------------------------------------------------------------------------------


def t_pdf(x: float, df: float) -> float:
    """Student t density with ``df`` degrees of freedom."""
    _check_df(df)
    if math.isinf(df):
        return norm_pdf(x)
    ratio = abs(x) / math.sqrt(df)
    log_kernel = 2.0 * math.log(ratio) if ratio > 1e150 else math.log1p(ratio * ratio)
    log_norm = -0.5 * math.log(df) - _lbeta(df / 2.0, 0.5)
    return math.exp(log_norm - (df + 1.0) / 2.0 * log_kernel)


def _t_tail(u: float, df: float) -> float:
    """P(T > u) for u >= 0 as 0.5 * I_{df/(df+u^2)}(df/2, 1/2), both arguments without cancellation."""
    if u == 0.0:
        return 0.5
    s = u / math.sqrt(df)
    if s > 1.0:
        r = (1.0 / s) ** 2  # no overflow for huge u
        return 0.5 * betainc(df / 2.0, 0.5, r / (1.0 + r), 1.0 / (1.0 + r))
    r = s * s
    return 0.5 * betainc(df / 2.0, 0.5, 1.0 / (1.0 + r), r / (1.0 + r))


def t_cdf(x: float, df: float) -> float:
    """Student t P(T <= x); ``df`` may be fractional (Welch) or ``math.inf`` (normal)."""
    _check_df(df)
    if math.isinf(df):
        return norm_cdf(x)
    if math.isnan(x):
        return math.nan
    tail = _t_tail(abs(x), df)
    return tail if x < 0 else 1.0 - tail


def t_sf(x: float, df: float) -> float:
    """Student t P(T > x); use for p-values (``2 * t_sf(abs(t), df)``)."""
    return t_cdf(-x, df)


def _t_isf_lower(q: float, df: float) -> float:
    """The u > 0 with P(T > u) = q for 0 < q < 0.5: safeguarded Newton on log sf, bisection fallback."""
    z = -norm_ppf(q)
    u = z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)  # Cornish-Fisher
    lo, hi = 0.0, max(u, 1.0)
    while _t_tail(hi, df) > q:
        lo, hi = hi, hi * 4.0
    u = u if lo < u < hi else 0.5 * (lo + hi)
    log_q = math.log(q)
    for _ in range(300):
        sf = _t_tail(u, df)
        if sf > q:
            lo = u
        else:
            hi = u
        pdf = t_pdf(u, df)
        step = (math.log(sf) - log_q) * sf / pdf if pdf > 0 and sf > 0 else math.nan
        new = u + step
        if not lo < new < hi:
            new = math.sqrt(lo * hi) if lo > 0 and hi > 4 * lo else 0.5 * (lo + hi)
        if abs(new - u) <= 1e-15 * abs(u) or hi - lo <= 4e-16 * hi:
            return new
        u = new
    return u


def t_ppf(p: float, df: float) -> float:
    """Student t quantile, e.g. ``t_ppf(0.975, n - 1)`` for a 95% t-interval."""
    _check_prob(p)
    _check_df(df)
    if math.isinf(df):
        return norm_ppf(p)
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p == 0.5:
        return 0.0
    q = min(p, 1.0 - p)  # 1 - p is exact for p >= 0.5
    if df == 1.0:
        u = 1.0 / math.tan(math.pi * q)
    elif df == 2.0:
        u = (1.0 - 2.0 * q) / math.sqrt(2.0 * q * (1.0 - q))
    else:
        u = _t_isf_lower(q, df)
    return u if p > 0.5 else -u


# --- binomial ------------------------------------------------------------------------------------


def binom_logpmf(k: int, n: int, p: float) -> float:
    """log P(X = k) for X ~ Binomial(n, p), in log space so large n does not overflow."""
    _check_prob(p)
    if k < 0 or k > n:
        return -math.inf
    if p == 0.0 or p == 1.0:
        return 0.0 if k == (0 if p == 0.0 else n) else -math.inf
    log_choose = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return log_choose + k * math.log(p) + (n - k) * math.log1p(-p)


def binom_pmf(k: int, n: int, p: float) -> float:
    """P(X = k) for X ~ Binomial(n, p)."""
    return math.exp(binom_logpmf(k, n, p))


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k), via I_{1-p}(n-k, k+1) so it costs O(sqrt(n)) rather than a sum over k terms."""
    _check_prob(p)
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return betainc(n - k, k + 1, 1.0 - p, p)


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X > k) (scipy's ``sf`` convention); accurate for small upper tails."""
    _check_prob(p)
    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    return betainc(k + 1, n - k, p, 1.0 - p)


def binom_test_pvalue(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test p-value, as ``scipy.stats.binomtest(k, n, p).pvalue``.

    Sums P(X = i) over every i no more likely than the observed k (relative slack 1e-7).
    """
    _check_prob(p)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if k == p * n:
        return 1.0
    threshold = binom_pmf(k, n, p) * (1.0 + 1e-7)
    mode = min(n, math.floor((n + 1) * p))
    if k < mode:  # other tail is [j, n]: the smallest j >= mode with pmf(j) <= threshold
        lo, hi = mode, n + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if binom_pmf(mid, n, p) <= threshold:
                hi = mid
            else:
                lo = mid + 1
        pval = binom_cdf(k, n, p) + binom_sf(lo - 1, n, p)
    elif k > mode:  # other tail is [0, j]: the largest j <= mode with pmf(j) <= threshold
        lo, hi = -1, mode
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if binom_pmf(mid, n, p) <= threshold:
                lo = mid
            else:
                hi = mid - 1
        pval = binom_cdf(lo, n, p) + binom_sf(k - 1, n, p)
    else:
        pval = 1.0
    return min(1.0, pval)


# --- Wilcoxon signed rank ------------------------------------------------------------------------


def signed_rank_pmf(n: int) -> np.ndarray:
    """Exact null pmf of W+ (index = statistic) for n untied non-zero differences, by subset-sum DP."""
    pmf = np.zeros(n * (n + 1) // 2 + 1)
    pmf[0] = 1.0
    for i in range(1, n + 1):
        shifted = np.zeros_like(pmf)
        shifted[i:] = pmf[:-i]
        pmf = 0.5 * (pmf + shifted)
    return pmf
