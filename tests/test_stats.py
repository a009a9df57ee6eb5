"""llmgw.stats / llmgw.stats_dist against scipy reference values (scipy is a test-only dependency)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st

from llmgw import stats, stats_dist

DFS = (1, 2, 5, 30, 1000, 1.5, 7.3, 1e6, 1e9)  # the brief's grid plus fractional (Welch) and huge df


def rel_close(actual: float, expected: float, rel: float) -> bool:
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=0.0)


# --- distributions -------------------------------------------------------------------------------


def test_norm_cdf_sf_pdf_match_scipy() -> None:
    for x in [*np.linspace(-30, 30, 241), -37.5, 1e-8, -1e-8]:
        assert rel_close(stats_dist.norm_cdf(x), st.norm.cdf(x), 1e-12), x
        assert rel_close(stats_dist.norm_sf(x), st.norm.sf(x), 1e-12), x
        assert rel_close(stats_dist.norm_pdf(x), st.norm.pdf(x), 1e-12), x


def test_norm_ppf_matches_scipy() -> None:
    ps = [1e-300, 1e-100, 1e-20, 1e-9, 1e-4, 0.01, 0.025, 0.0749, 0.075, 0.3, 0.5, 0.7, 0.925, 0.95, 0.975]
    for p in [*ps, 1 - 1e-6, 1 - 1e-12, 1 - 2**-53]:
        assert rel_close(stats_dist.norm_ppf(p), st.norm.ppf(p), 1e-13) or p == 0.5, p
    assert stats_dist.norm_ppf(0.5) == 0.0
    assert stats_dist.norm_ppf(0.0) == -math.inf and stats_dist.norm_ppf(1.0) == math.inf
    for bad in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError):
            stats_dist.norm_ppf(bad)


@pytest.mark.parametrize("df", DFS)
def test_t_cdf_matches_scipy_including_tails(df: float) -> None:
    xs = [-1e6, -200.0, -30.0, -8.0, -2.5, -1.0, -0.1, 0.0, 0.1, 1.0, 2.5, 8.0, 30.0, 200.0, 1e6]
    for x in xs:
        assert rel_close(stats_dist.t_cdf(x, df), st.t.cdf(x, df), 1e-9), (df, x)
        assert rel_close(stats_dist.t_sf(x, df), st.t.sf(x, df), 1e-9), (df, x)  # upper tail, relative
        assert rel_close(stats_dist.t_pdf(x, df), st.t.pdf(x, df), 1e-9), (df, x)
    assert stats_dist.t_cdf(1.3, math.inf) == stats_dist.norm_cdf(1.3)


@pytest.mark.parametrize("df", DFS)
def test_t_ppf_matches_scipy_and_inverts_cdf(df: float) -> None:
    for p in [1e-12, 1e-6, 0.001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999, 1 - 1e-9]:
        t = stats_dist.t_ppf(p, df)
        expected = st.t.ppf(p, df)
        assert (t == 0.0 and p == 0.5) or rel_close(t, expected, 1e-9), (df, p, t, expected)
        assert rel_close(stats_dist.t_cdf(t, df), p, 1e-9), (df, p)
    with pytest.raises(ValueError):
        stats_dist.t_ppf(0.5, 0)


def test_binomial_pmf_cdf_sf_match_scipy() -> None:
    for n in (1, 7, 40, 333):
        for p in (0.0, 0.03, 0.5, 0.81, 1.0):
            for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
                for ours, ref in (
                    (stats_dist.binom_pmf, st.binom.pmf),
                    (stats_dist.binom_cdf, st.binom.cdf),
                    (stats_dist.binom_sf, st.binom.sf),
                ):
                    expected = float(ref(k, n, p))
                    got = ours(k, n, p)
                    assert got == expected or rel_close(got, expected, 1e-9), (ours.__name__, k, n, p)


def test_binom_test_pvalue_matches_scipy_binomtest() -> None:
    for n in (1, 5, 12, 31, 200):
        for p in (0.5, 0.3, 0.9, 0.05):
            for k in range(0, n + 1, max(1, n // 17)):
                expected = st.binomtest(k, n, p).pvalue
                assert rel_close(stats_dist.binom_test_pvalue(k, n, p), expected, 1e-9), (k, n, p)


def test_signed_rank_pmf_is_a_distribution() -> None:
    pmf = stats_dist.signed_rank_pmf(10)
    assert pmf.size == 56 and math.isclose(pmf.sum(), 1.0)
    assert np.allclose(pmf, pmf[::-1])  # symmetric around n(n+1)/4
    assert pmf[0] == 2.0**-10


# --- intervals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_wilson_matches_scipy(confidence: float) -> None:
    for n in (1, 2, 10, 40, 1000):
        for k in sorted({0, 1, n // 2, n - 1, n}):
            ci = st.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
            got = stats.wilson_interval(k, n, confidence)
            assert math.isclose(got.low, ci.low, rel_tol=1e-12, abs_tol=1e-15), (k, n)
            assert math.isclose(got.high, ci.high, rel_tol=1e-12, abs_tol=1e-15), (k, n)
            assert got.estimate == k / n


def test_wilson_edge_cases() -> None:
    empty = stats.wilson_interval(0, 0)
    assert (empty.low, empty.high) == (0.0, 1.0) and math.isnan(empty.estimate)
    for bad in ((3, 2), (-1, 5)):
        with pytest.raises(ValueError):
            stats.wilson_interval(*bad)
    with pytest.raises(ValueError):
        stats.wilson_interval(1, 2, confidence=1.0)


def test_mean_interval_matches_scipy_t_interval() -> None:
    rng = np.random.default_rng(7)
    for n in (2, 3, 10, 250):
        x = rng.gamma(2.0, 1.5, size=n)
        for confidence in (0.9, 0.95, 0.99):
            low, high = st.t.interval(confidence, n - 1, loc=x.mean(), scale=st.sem(x))
            got = stats.mean_interval(x, confidence)
            assert rel_close(got.low, low, 1e-9) and rel_close(got.high, high, 1e-9)
            assert got.estimate == pytest.approx(x.mean(), rel=1e-15)


def test_mean_interval_edge_cases() -> None:
    assert stats.mean_interval([3.0, 3.0, 3.0]) == stats.Interval(3.0, 3.0, 3.0)
    for bad in ([], [1.0], [1.0, math.nan]):
        with pytest.raises(ValueError):
            stats.mean_interval(bad)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_mean_interval_matches_scipy_within_monte_carlo_error(method: str) -> None:
    x = np.random.default_rng(3).lognormal(0.0, 0.8, size=60)
    ref = st.bootstrap(
        (x,),
        np.mean,
        method="BCa" if method == "bca" else "percentile",
        n_resamples=10_000,
        rng=np.random.default_rng(11),
    ).confidence_interval
    got = stats.bootstrap_mean_interval(x, 0.95, n_resamples=10_000, seed=5, method=method)  # type: ignore[arg-type]
    boot_sd = x.std(ddof=1) / math.sqrt(x.size)
    # Quantile MC error with 10k resamples is ~0.03 bootstrap SDs per endpoint; allow 0.15.
    assert abs(got.low - ref.low) < 0.15 * boot_sd and abs(got.high - ref.high) < 0.15 * boot_sd
    assert got.low < got.estimate < got.high
    assert got == stats.bootstrap_mean_interval(x, 0.95, n_resamples=10_000, seed=5, method=method)  # type: ignore[arg-type]


def test_bootstrap_mean_interval_edge_cases() -> None:
    assert stats.bootstrap_mean_interval([2.0, 2.0]) == stats.Interval(2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        stats.bootstrap_mean_interval([])
    with pytest.raises(ValueError):
        stats.bootstrap_mean_interval([1.0, 2.0], method="basic")  # type: ignore[arg-type]


# --- two-sample tests ----------------------------------------------------------------------------


def test_welch_matches_scipy_ttest_ind() -> None:
    rng = np.random.default_rng(1)
    cases = [
        (rng.normal(0.6, 0.2, 40), rng.normal(0.5, 0.3, 55)),
        (rng.normal(0.0, 1.0, 3), rng.normal(2.0, 5.0, 8)),
        (np.array([1.0, 2.0]), np.array([1.5, 4.0, 2.5])),
        (rng.integers(1, 6, 200).astype(float), rng.integers(1, 6, 180).astype(float)),
    ]
    for a, b in cases:
        ref = st.ttest_ind(a, b, equal_var=False)
        got = stats.welch_t_test(a, b)
        assert rel_close(got.statistic, ref.statistic, 1e-9)
        assert rel_close(got.p_value, ref.pvalue, 1e-9)
        assert got.df is not None and rel_close(got.df, ref.df, 1e-12)
        ci = ref.confidence_interval(0.95)
        assert got.interval is not None
        assert rel_close(got.interval.low, ci.low, 1e-9) and rel_close(got.interval.high, ci.high, 1e-9)
        assert got.difference == pytest.approx(a.mean() - b.mean(), rel=1e-12)


def test_welch_edge_cases() -> None:
    same = [0.2, 0.9, 0.4, 0.7]
    assert stats.welch_t_test(same, same).p_value == 1.0
    constant = stats.welch_t_test([1.0, 1.0], [1.0, 1.0, 1.0])
    assert (constant.statistic, constant.p_value, constant.difference) == (0.0, 1.0, 0.0)
    assert constant.df is not None and math.isnan(constant.df)
    split = stats.welch_t_test([2.0, 2.0], [1.0, 1.0])
    assert split.statistic == math.inf and split.p_value == 0.0
    for a, b in (([1.0], [1.0, 2.0]), ([1.0, 2.0], []), ([1.0, math.inf], [1.0, 2.0])):
        with pytest.raises(ValueError):
            stats.welch_t_test(a, b)


def test_two_proportion_test_matches_chi2_and_newcombe() -> None:
    for sa, na, sb, nb in ((56, 70, 48, 80), (3, 40, 9, 40), (0, 25, 4, 30), (120, 200, 118, 210)):
        table = np.array([[sa, na - sa], [sb, nb - sb]])
        chi2, p, _, _ = st.chi2_contingency(table, correction=False)
        got = stats.two_proportion_test(sa, na, sb, nb)
        assert rel_close(got.p_value, p, 1e-9) and rel_close(got.statistic**2, chi2, 1e-9)
        assert got.difference == pytest.approx(sa / na - sb / nb)
    # Newcombe (1998), Stat Med 17:873, example 56/70 vs 48/80, method 10: 0.0524 to 0.3339.
    ci = stats.two_proportion_test(56, 70, 48, 80).interval
    assert ci is not None and round(ci.low, 4) == 0.0524 and round(ci.high, 4) == 0.3339
    assert stats.two_proportion_test(5, 10, 5, 10).p_value == 1.0
    assert stats.two_proportion_test(0, 10, 0, 12).p_value == 1.0
    with pytest.raises(ValueError):
        stats.two_proportion_test(0, 0, 1, 2)


# --- paired tests --------------------------------------------------------------------------------


def test_mcnemar_exact_matches_binomtest() -> None:
    for b, c in ((0, 1), (1, 0), (3, 9), (9, 3), (7, 7), (0, 12), (25, 40), (150, 181)):
        got = stats.mcnemar_exact(b, c)
        assert rel_close(got.p_value, st.binomtest(b, b + c, 0.5).pvalue, 1e-9), (b, c)
        k, n = min(b, c), b + c
        mid = min(1.0, 2 * st.binom.cdf(k, n, 0.5) - st.binom.pmf(k, n, 0.5))
        assert rel_close(stats.mcnemar_exact(b, c, mid_p=True).p_value, mid, 1e-9), (b, c)
        assert got.difference == b - c and got.statistic == b / n
    assert stats.mcnemar_exact(0, 0).p_value == 1.0
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 2)


def test_paired_bootstrap_matches_scipy_and_gives_sane_p_values() -> None:
    rng = np.random.default_rng(4)
    a = rng.beta(5, 3, size=50)
    b = np.clip(a - 0.04 + rng.normal(0, 0.1, size=50), 0, 1)
    ref = st.bootstrap(
        (a, b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        paired=True,
        method="percentile",
        n_resamples=10_000,
        rng=np.random.default_rng(2),
    ).confidence_interval
    got = stats.paired_bootstrap(a, b, n_resamples=10_000, seed=9)
    boot_sd = (a - b).std(ddof=1) / math.sqrt(a.size)
    assert got.interval is not None
    assert abs(got.interval.low - ref.low) < 0.15 * boot_sd
    assert abs(got.interval.high - ref.high) < 0.15 * boot_sd
    normal_p = 2 * st.norm.sf(abs((a - b).mean()) / boot_sd)
    assert abs(got.p_value - normal_p) < 0.03
    assert stats.paired_bootstrap(a, a).p_value == 1.0
    assert stats.paired_bootstrap(a + 0.5, a, n_resamples=999).p_value == pytest.approx(1 / 1000)
    with pytest.raises(ValueError):
        stats.paired_bootstrap([1.0, 2.0], [1.0])


WILCOXON_EXACT = [
    ([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30], [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]),
    (np.arange(1.0, 26.0) * np.where(np.arange(25) % 3 == 0, -1, 1), np.zeros(25)),  # n = 25, no ties
    ([0.5, 0.2, 0.9, 0.4, 0.7, 0.3, 0.8, 0.6], [0.5, 0.1, 0.45, 0.4, 0.78, 0.36, 0.17, 0.03]),  # two zeros
]


@pytest.mark.parametrize(("a", "b"), WILCOXON_EXACT)
def test_wilcoxon_exact_matches_scipy(a: list[float], b: list[float]) -> None:
    ref = st.wilcoxon(a, b, method="exact")
    got = stats.wilcoxon_signed_rank(a, b)
    assert got.method == "wilcoxon exact"
    assert got.statistic == ref.statistic and rel_close(got.p_value, ref.pvalue, 1e-9)


def _wilcoxon_approx_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(8)
    x = rng.integers(0, 6, 30).astype(float)  # judge scores 0..5: many ties and zero differences
    y = rng.integers(0, 6, 30).astype(float)
    u = rng.normal(0.3, 1.0, 60)  # n > 25, no ties
    v = np.round(rng.normal(0.0, 1.0, 20), 1)  # a few ties, n <= 25
    return [(x, y), (u, np.zeros(60)), (v, np.zeros(20)), (x + 1, x + np.array([0, 1, 2] * 10, dtype=float))]


@pytest.mark.parametrize(("a", "b"), _wilcoxon_approx_cases())
def test_wilcoxon_approx_matches_scipy(a: np.ndarray, b: np.ndarray) -> None:
    ref = st.wilcoxon(a, b, method="approx", correction=True)
    got = stats.wilcoxon_signed_rank(a, b, method="approx")
    assert got.statistic == ref.statistic and rel_close(got.p_value, ref.pvalue, 1e-9)
    if np.unique(np.abs(a - b)[a != b]).size < np.count_nonzero(a != b):  # ties: auto must not go exact
        assert stats.wilcoxon_signed_rank(a, b).p_value == got.p_value


def test_wilcoxon_edge_cases() -> None:
    same = stats.wilcoxon_signed_rank([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.p_value == 1.0 and same.statistic == 0.0
    with pytest.raises(ValueError):
        stats.wilcoxon_signed_rank([1.0, 2.0, 3.0], [0.0, 1.0, 2.5], method="exact")  # tied |d| = 1
    with pytest.raises(ValueError):
        stats.wilcoxon_signed_rank([1.0, 2.0], [1.0])


# --- Holm, effect sizes, power -------------------------------------------------------------------


def test_holm_hand_computed() -> None:
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.6, 0.5]) == [1.0, 1.0]  # 0.5 * 2 caps at 1, monotone for 0.6
    assert stats.holm([0.02]) == [0.02]
    assert stats.holm([]) == []
    with pytest.raises(ValueError):
        stats.holm([0.1, 1.5])


def test_effect_sizes() -> None:
    a, b = np.array([3.0, 4.0, 5.0, 6.0]), np.array([1.0, 2.0, 4.0])
    pooled = math.sqrt((3 * a.var(ddof=1) + 2 * b.var(ddof=1)) / 5)
    assert stats.cohens_d(a, b) == pytest.approx((a.mean() - b.mean()) / pooled)
    assert stats.cohens_d([1.0, 1.0], [1.0, 1.0]) == 0.0
    d = np.array([0.1, 0.3, -0.1, 0.2])
    assert stats.paired_cohens_dz(d + 1, np.ones(4)) == pytest.approx(d.mean() / d.std(ddof=1))
    assert stats.cohens_h(0.5, 0.5) == 0.0
    assert stats.cohens_h(0.8, 0.5) == pytest.approx(2 * math.asin(math.sqrt(0.8)) - math.pi / 2)
    ratio = stats.mcnemar_odds_ratio(10, 5)
    assert ratio.estimate == 2.0 and ratio.low < 2.0 < ratio.high
    assert ratio.high == pytest.approx(2.0 * math.exp(st.norm.ppf(0.975) * math.sqrt(0.1 + 0.2)))
    assert stats.mcnemar_odds_ratio(0, 4).estimate == pytest.approx(0.5 / 4.5)  # Haldane
    with pytest.raises(ValueError):
        stats.cohens_d([1.0], [2.0])


def test_min_detectable_differences() -> None:
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    assert stats.min_detectable_difference_means(50, 2.0) == pytest.approx(z * 2.0 * math.sqrt(2 / 50))
    for n, p1 in ((40, 0.75), (200, 0.1), (1000, 0.5)):
        delta = stats.min_detectable_difference_proportions(n, p1)
        p2 = p1 + delta if p1 <= 0.5 else p1 - delta
        pbar = (p1 + p2) / 2
        # Plugging delta back into the normal-approximation sample-size formula gives n per arm.
        required = (
            st.norm.ppf(0.975) * math.sqrt(2 * pbar * (1 - pbar))
            + st.norm.ppf(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
        ) ** 2 / delta**2
        assert required == pytest.approx(n, rel=1e-9)
    assert stats.min_detectable_difference_proportions(2, 0.5) == math.inf


def test_power_note() -> None:
    note = stats.power_note(40, p_base=0.75)
    assert note == (
        "With 40 cases per variant this suite can only detect differences of ≥ 30 points in pass rate "
        "(80% power, α=0.05)."
    )
    assert "≥ 0.752 in mean score" in (stats.power_note(40, sd=1.2) or "")
    assert "cannot reliably detect" in (stats.power_note(2, p_base=0.5) or "")
    assert stats.power_note(5000, p_base=0.9, target=0.05) is None
    assert stats.power_note(0, p_base=0.5) is None
    assert stats.power_note(12, sd=0.0) is None  # every score the same: no "≥ 0" claim
    with pytest.raises(ValueError):
        stats.power_note(40)
