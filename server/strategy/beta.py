"""The Beta distribution's CDF and quantiles, for credible intervals of a success rate.

The CDF of Beta(a, b) is the regularized incomplete beta function

    I_x(a, b) = x^a (1 − x)^b / (a·B(a, b)) · 1/(1 + d₁/(1 + d₂/(1 + …)))
    d₂ₘ₊₁ = −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1))
    d₂ₘ   = m(b − m)x / ((a + 2m − 1)(a + 2m))

a continued fraction that converges fast for x < (a + 1)/(a + b + 2); past that,
I_x(a, b) = 1 − I₁₋ₓ(b, a). It is evaluated by the modified Lentz method (Lentz,
1976; Thompson & Barnett, 1986). The quantile x = I⁻¹_p(a, b) starts from the
approximation of Abramowitz & Stegun (1964, 26.5.22) and takes Halley steps on
I_x(a, b) − p, whose derivative is the Beta density. The scheme is that of
Numerical Recipes (Press et al., 3rd ed., 2007, §6.4 and §6.14.10).
"""

import math

TINY = 1e-300
"""Stands in for a zero denominator in Lentz's method."""
CF_EPS = 1e-14
CF_MAX_TERMS = 100_000
"""Terms grow as √max(a, b); even a million outcomes need a few thousand."""
QUANTILE_EPS = 1e-10
HALLEY_STEPS = 12


def log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def beta_cdf(x: float, a: float, b: float) -> float:
    """I_x(a, b) for a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x < (a + 1.0) / (a + b + 2.0):
        return _front(x, a, b) * _continued_fraction(x, a, b) / a
    return 1.0 - _front(1.0 - x, b, a) * _continued_fraction(1.0 - x, b, a) / b


def beta_quantile(p: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = p, for a, b > 0 and 0 ≤ p ≤ 1."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    x = _initial_guess(p, a, b)
    for _ in range(HALLEY_STEPS):
        if not 0.0 < x < 1.0:
            break  # the quantile is closer to 0 or 1 than a float can tell
        x, step = _halley_step(x, p, a, b)
        if abs(step) < QUANTILE_EPS * min(x, 1.0 - x):
            break
    return min(1.0, max(0.0, x))


def _front(x: float, a: float, b: float) -> float:
    """x^a (1 − x)^b / B(a, b), in logs so that large counts do not overflow."""
    return math.exp(a * math.log(x) + b * math.log1p(-x) - log_beta(a, b))


def _continued_fraction(x: float, a: float, b: float) -> float:
    """1/(1 + d₁/(1 + d₂/(1 + …))) by the modified Lentz method."""
    c, d = 1.0, _nonzero(1.0 - (a + b) * x / (a + 1.0))
    d = 1.0 / d
    h = d
    for m in range(1, CF_MAX_TERMS):
        for coefficient in (_even_term(m, x, a, b), _odd_term(m, x, a, b)):
            d = 1.0 / _nonzero(1.0 + coefficient * d)
            c = _nonzero(1.0 + coefficient / c)
            h *= d * c
        if abs(d * c - 1.0) < CF_EPS:
            return h
    return h


def _even_term(m: int, x: float, a: float, b: float) -> float:
    return m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))


def _odd_term(m: int, x: float, a: float, b: float) -> float:
    return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))


def _nonzero(value: float) -> float:
    return value if abs(value) > TINY else TINY


def _initial_guess(p: float, a: float, b: float) -> float:
    """A&S 26.5.22 (a normal quantile mapped through a Beta-shaped transform) when
    a, b ≥ 1; else the leading terms of the CDF near 0 and near 1 (NR §6.14.10)."""
    if a >= 1.0 and b >= 1.0:
        return _abramowitz_stegun(p, a, b)
    near_zero = math.exp(a * math.log(a / (a + b))) / a
    near_one = math.exp(b * math.log(b / (a + b))) / b
    total = near_zero + near_one
    if p < near_zero / total:
        return math.pow(a * total * p, 1.0 / a)
    return 1.0 - math.pow(b * total * (1.0 - p), 1.0 / b)


def _abramowitz_stegun(p: float, a: float, b: float) -> float:
    tail = min(p, 1.0 - p)
    t = math.sqrt(-2.0 * math.log(tail))
    z = (2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t
    z = -z if p < 0.5 else z
    lam = (z * z - 3.0) / 6.0
    h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0))
    w = z * math.sqrt(h + lam) / h - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) * (
        lam + 5.0 / 6.0 - 2.0 / (3.0 * h)
    )
    return a / (a + b * math.exp(2.0 * w))


def _halley_step(x: float, p: float, a: float, b: float) -> tuple[float, float]:
    """One Halley step on f(x) = I_x(a, b) − p; f′ is the Beta density and
    f″/f′ = (a − 1)/x − (b − 1)/(1 − x). Steps that leave (0, 1) are halved back."""
    density = math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) - log_beta(a, b))
    newton = (beta_cdf(x, a, b) - p) / density
    step = newton / (1.0 - 0.5 * min(1.0, newton * ((a - 1.0) / x - (b - 1.0) / (1.0 - x))))
    moved = x - step
    if moved <= 0.0:
        moved = 0.5 * x
    elif moved >= 1.0:
        moved = 0.5 * (x + 1.0)
    return moved, step
