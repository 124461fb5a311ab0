"""Statistics for the Performance Optimizer, in pure Python (scipy is not a dependency).

Quantiles are Hyndman & Fan's type 7 ("Sample quantiles in statistical packages",
The American Statistician 50, 1996), the default of R and NumPy: on the sorted
sample x_0 ≤ ... ≤ x_(n−1),

    h = (n − 1)·q,   Q(q) = x_floor(h) + (h − floor(h))·(x_(floor(h)+1) − x_floor(h))

Tests return a `Significance`: the statistic, a two-sided p-value and, for t-tests,
the degrees of freedom.

Welch's t-test (B. L. Welch, Biometrika 34, 1947) for two means with unequal variances:

    t = (m_x − m_y) / sqrt(v_x/n_x + v_y/n_y)
    df = (v_x/n_x + v_y/n_y)² / ((v_x/n_x)²/(n_x − 1) + (v_y/n_y)²/(n_y − 1))

    Its two-sided p-value is the Student-t tail, P(|T| ≥ |t|) = I_x(df/2, 1/2) with
    x = df/(df + t²) (Abramowitz & Stegun 26.5.27, 26.7.1), where I is the
    regularised incomplete beta function, computed by the continued fraction of
    Numerical Recipes (Press et al., 3rd ed., 2007, §6.4) with modified Lentz.

Two-proportion z-test with the pooled rate p = (k_1 + k_2)/(n_1 + n_2):

    z = (k_1/n_1 − k_2/n_2) / sqrt(p(1 − p)(1/n_1 + 1/n_2)),   p-value = erfc(|z|/sqrt 2)

Fisher's exact test (R. A. Fisher, 1922) for small counts: with the margins fixed,
the first row's successes are hypergeometric, and the two-sided p-value sums the
probabilities of every table no more likely than the observed one (the rule of R's
fisher.test and scipy, with the same 1e-7 relative tolerance for ties).
`proportion_test` uses it when an expected cell count is below 5 (Cochran, 1954),
where the normal approximation of the z-test is poor.

Two corrections for testing many hypotheses at once. Holm's step-down procedure
(S. Holm, Scand. J. Statist. 6, 1979) keeps the chance of any false rejection in a
family of m tests at α: the i-th smallest p-value is adjusted to
max over j ≤ i of min(1, (m − j + 1)·p_(j)). Used for verdicts (a comparison, a
trend). Benjamini & Hochberg's step-up procedure (JRSS B 57, 1995) keeps the
expected share of false discoveries among the rejections at α, and when nothing is
going on that is again the chance of any rejection: used for lists of findings
(recommendations, bottlenecks), which would lose most of their power under Holm
once there are hundreds of tests.

Robust outliers use the modified z-score of Iglewicz & Hoaglin ("How to detect and
handle outliers", ASQC, 1993): M = 0.6745·(x − median)/MAD, an outlier past 3.5.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.performance import StatisticalTest
from server.core.stats import wilson_lower_bound

ALPHA = 0.05
"""Significance level of every test here."""
FISHER_MIN_EXPECTED = 5.0
"""Below this expected cell count the z-test gives way to Fisher's exact test."""
FISHER_TIE_TOLERANCE = 1e-7
MODIFIED_Z_FACTOR = 0.6745
"""The 0.75 quantile of the standard normal: MAD/0.6745 estimates sigma."""
OUTLIER_Z = 3.5
BETA_EPSILON = 1e-15
BETA_TINY = 1e-300
BETA_MAX_TERMS = 10_000
"""The continued fraction needs O(sqrt(max(a, b))) terms at worst (NR §6.4)."""
NORMAL_DF = 1e7
"""Past this many degrees of freedom t is normal to 1e-8, closer than lgamma keeps
the incomplete beta's prefactor."""


@dataclass(frozen=True, slots=True)
class Significance:
    statistic: float | None
    """t or z; None for Fisher's exact test, whose p-value needs no statistic."""
    p_value: float
    df: float | None = None


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def variance(values: Sequence[float]) -> float:
    """Unbiased sample variance (n − 1 in the denominator), two-pass for accuracy."""
    if len(values) < 2:
        raise ValueError("variance needs at least two values")
    centre = mean(values)
    return math.fsum((v - centre) ** 2 for v in values) / (len(values) - 1)


def quantile_sorted(ordered: Sequence[float], q: float) -> float:
    """Type 7 quantile of an already sorted sample."""
    if not ordered:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must lie in [0, 1], got {q}")
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def quantile(values: Sequence[float], q: float) -> float:
    return quantile_sorted(sorted(values), q)


def median(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (unscaled)."""
    centre = median(values)
    return median([abs(v - centre) for v in values])


def modified_z(value: float, sample: Sequence[float], mad_floor: float) -> float:
    """Iglewicz-Hoaglin M of `value` against `sample`; `mad_floor` keeps a sample of
    near-equal values from making every small difference an outlier."""
    spread = max(mad(sample), mad_floor)
    return MODIFIED_Z_FACTOR * (value - median(sample)) / spread


def wilson_interval(k: float, n: float) -> tuple[float, float]:
    """95% Wilson score interval; the upper end is 1 − L(n − k, n) by symmetry."""
    if n <= 0:
        return 0.0, 1.0
    return wilson_lower_bound(k, n), 1.0 - wilson_lower_bound(n - k, n)


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_two_sided_p(z: float) -> float:
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


def _lentz_guard(value: float) -> float:
    """Modified Lentz: replace an exact zero so the next division stays finite."""
    return BETA_TINY if abs(value) < BETA_TINY else value


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), Numerical Recipes §6.4 (betacf)."""
    c, d = 1.0, 1.0 / _lentz_guard(1.0 - (a + b) * x / (a + 1.0))
    result = d
    for m in range(1, BETA_MAX_TERMS + 1):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d, c = 1.0 / _lentz_guard(1.0 + even * d), _lentz_guard(1.0 + even / c)
        result *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d, c = 1.0 / _lentz_guard(1.0 + odd * d), _lentz_guard(1.0 + odd / c)
        result *= d * c
        if abs(d * c - 1.0) < BETA_EPSILON:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b); the fraction converges fast for x < (a + 1)/(a + b + 2), so past
    that point it is evaluated through I_x(a, b) = 1 − I_(1−x)(b, a)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| ≥ |t|) for Student's t with `df` degrees of freedom (any real df > 0)."""
    if df <= 0:
        raise ValueError(f"df must be > 0, got {df}")
    if math.isinf(t):
        return 0.0
    if df > NORMAL_DF:
        return normal_two_sided_p(t)
    p = regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return min(1.0, max(0.0, p))


@dataclass(frozen=True, slots=True)
class Moments:
    """What Welch's test needs of a sample; cells keep these rather than recompute."""

    n: int
    mean: float
    variance: float


def moments(values: Sequence[float]) -> Moments:
    return Moments(len(values), mean(values), variance(values))


def welch_t_test(x: Sequence[float], y: Sequence[float]) -> Significance:
    """Welch's t-test of mean(x) = mean(y); needs two values in each sample."""
    if len(x) < 2 or len(y) < 2:
        raise ValueError("Welch's t-test needs at least two values in each sample")
    return welch_from_moments(moments(x), moments(y))


def welch_from_moments(x: Moments, y: Moments) -> Significance:
    se_x, se_y = x.variance / x.n, y.variance / y.n
    difference = x.mean - y.mean
    if se_x + se_y == 0.0:
        return _constant_samples(difference, x.n + y.n - 2.0)
    t = difference / math.sqrt(se_x + se_y)
    share_x = se_x / (se_x + se_y)  # df in shares, so tiny variances cannot underflow
    df = 1.0 / (share_x**2 / (x.n - 1) + (1.0 - share_x) ** 2 / (y.n - 1))
    return Significance(t, student_t_two_sided_p(t, df), df)


def _constant_samples(difference: float, df: float) -> Significance:
    """Both samples constant: equal values are no evidence, unequal ones are certain."""
    if difference == 0.0:
        return Significance(0.0, 1.0, df)
    return Significance(math.copysign(math.inf, difference), 0.0, df)


def _check_counts(k: int, n: int) -> None:
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")


def two_proportion_z_test(k1: int, n1: int, k2: int, n2: int) -> Significance:
    """z-test of k1/n1 = k2/n2 with the pooled rate; z > 0 when the first is higher."""
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return Significance(0.0, 1.0)
    z = (k1 / n1 - k2 / n2) / se
    return Significance(z, normal_two_sided_p(z))


def _log_hypergeometric(x: int, n1: int, n2: int, successes: int) -> float:
    """ln P(X = x): x of the `successes` fall in the first row (n1 of n1 + n2)."""
    return _log_choose(n1, x) + _log_choose(n2, successes - x) - _log_choose(n1 + n2, successes)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> Significance:
    """Two-sided Fisher exact test of the 2×2 table [[k1, n1 − k1], [k2, n2 − k2]]."""
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    successes = k1 + k2
    support = range(max(0, successes - n2), min(successes, n1) + 1)
    log_p = [_log_hypergeometric(x, n1, n2, successes) for x in support]
    cutoff = log_p[k1 - support.start] + math.log1p(FISHER_TIE_TOLERANCE)
    p = math.fsum(math.exp(value) for value in log_p if value <= cutoff)
    return Significance(None, min(1.0, p))


def proportion_test(k1: int, n1: int, k2: int, n2: int) -> tuple[StatisticalTest, Significance]:
    """Fisher's exact test when an expected cell count is below 5, else the z-test."""
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    successes, failures, total = k1 + k2, n1 + n2 - k1 - k2, n1 + n2
    smallest_expected = min(n1, n2) * min(successes, failures) / total
    if smallest_expected < FISHER_MIN_EXPECTED:
        return "fisher_exact", fisher_exact(k1, n1, k2, n2)
    return "two_proportion_z", two_proportion_z_test(k1, n1, k2, n2)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: reject where adjusted ≤ α."""
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given: the i-th
    smallest becomes min over j ≥ i of min(1, m·p_(j)/j); reject where q ≤ α."""
    m = len(p_values)
    order = sorted(range(m), key=p_values.__getitem__, reverse=True)
    adjusted = [1.0] * m
    running = 1.0
    for position, index in enumerate(order):
        rank = m - position
        running = min(running, m * p_values[index] / rank)
        adjusted[index] = running
    return adjusted


def hedges_g(x: Sequence[float], y: Sequence[float]) -> float:
    """Standardised mean difference with Hedges' small-sample correction
    J = 1 − 3/(4(n_x + n_y) − 9) (Hedges, J. Educ. Stat. 6, 1981)."""
    pooled = ((len(x) - 1) * variance(x) + (len(y) - 1) * variance(y)) / (len(x) + len(y) - 2)
    difference = mean(x) - mean(y)
    if pooled == 0.0:
        return 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    correction = 1.0 - 3.0 / (4.0 * (len(x) + len(y)) - 9.0)
    return correction * difference / math.sqrt(pooled)


def cohens_h(p1: float, p2: float) -> float:
    """Effect size of two proportions: 2·asin(sqrt p1) − 2·asin(sqrt p2) (Cohen, 1988)."""
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2))


@dataclass(frozen=True, slots=True)
class LogRatio:
    value: float
    """ln R for the ratio estimator R = sum(costs)/sum(outcomes)."""
    variance: float


def log_ratio(costs: Sequence[float], outcomes: Sequence[float]) -> LogRatio:
    """ln R and its variance by the delta method (Cochran, Sampling Techniques,
    3rd ed., 1977, §6.3):

        var(R) ≈ sum((c_i − R·o_i)²) / ((n − 1)·n·mean(o)²),   var(ln R) ≈ var(R)/R²
    """
    n = len(costs)
    if n < 2 or math.fsum(outcomes) <= 0.0 or math.fsum(costs) <= 0.0:
        raise ValueError("the ratio needs two pairs and positive sums")
    ratio = math.fsum(costs) / math.fsum(outcomes)
    residuals = math.fsum((c - ratio * o) ** 2 for c, o in zip(costs, outcomes, strict=True))
    var_ratio = residuals / ((n - 1) * n * mean(outcomes) ** 2)
    return LogRatio(math.log(ratio), var_ratio / ratio**2)


def ratio_z_test(
    costs_a: Sequence[float],
    outcomes_a: Sequence[float],
    costs_b: Sequence[float],
    outcomes_b: Sequence[float],
) -> Significance:
    """z-test of ln R_a = ln R_b for two ratio estimators R = sum(costs)/sum(outcomes);
    z > 0 when R_a is the larger."""
    return ratio_z_from(log_ratio(costs_a, outcomes_a), log_ratio(costs_b, outcomes_b))


def ratio_z_from(a: LogRatio, b: LogRatio) -> Significance:
    difference, spread = a.value - b.value, a.variance + b.variance
    if spread == 0.0:
        return _constant_samples(difference, math.inf)
    z = difference / math.sqrt(spread)
    return Significance(z, normal_two_sided_p(z))
