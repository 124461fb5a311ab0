"""Confidence of a learning from its evidence.

A learning claims an outcome rate: "this sequence succeeds" (SUCCESS_PATTERN) or
"this sequence fails" (FAILURE_PATTERN). Its confidence is the Wilson score lower
bound of that rate (E. B. Wilson, 1927; Agresti & Coull, 1998), with z = 1.96 (95%):

    p̂ = k / n
    L(k, n) = (p̂ + z²/2n − z·sqrt(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n)

L rewards both a high rate and a large sample: 3 of 3 gives 0.44, 10 of 10 gives
0.72, 30 of 30 gives 0.89. Seed 003 maps "occurrences" to four levels; we map L:

    L < 0.40 → LOW,  0.40 ≤ L < 0.60 → MEDIUM,  0.60 ≤ L < 0.80 → HIGH,  L ≥ 0.80 → VERY_HIGH
"""

import math

from schemas import ConfidenceLevel

Z_95 = 1.959963984540054
LEVEL_FLOORS = (
    (0.80, ConfidenceLevel.VERY_HIGH),
    (0.60, ConfidenceLevel.HIGH),
    (0.40, ConfidenceLevel.MEDIUM),
)


def wilson_lower_bound(k: float, n: float, z: float = Z_95) -> float:
    """Lower bound of the Wilson score interval for k successes in n trials; 0 when
    n = 0. Counts may be fractional (decayed evidence, `window.py`): the formula
    holds for any real 0 ≤ k ≤ n, and rounding noise past n is clamped."""
    if n <= 0:
        return 0.0
    if not -1e-9 <= k <= n * (1 + 1e-9):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = min(1.0, max(0.0, k / n))
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z2 / n))


def confidence_level(confidence: float) -> ConfidenceLevel:
    for floor, level in LEVEL_FLOORS:
        if confidence >= floor:
            return level
    return ConfidenceLevel.LOW


def level_floor(level: ConfidenceLevel) -> float:
    """The smallest confidence that maps to `level`."""
    return next((floor for floor, lvl in LEVEL_FLOORS if lvl is level), 0.0)
