"""Confidence of a learning from its evidence.

A learning claims an outcome rate: "this sequence succeeds" (SUCCESS_PATTERN) or
"this sequence fails" (FAILURE_PATTERN). Its confidence is the Wilson score lower
bound of that rate (E. B. Wilson, 1927; Agresti & Coull, 1998), with z = 1.96 (95%):

    p̂ = k / n
    L(k, n) = (p̂ + z²/2n − z·sqrt(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n)

L rewards both a high rate and a large sample: 3 of 3 gives 0.44, 10 of 10 gives
0.72, 30 of 30 gives 0.89. Four levels, from L:

    L < 0.40 → LOW,  0.40 ≤ L < 0.60 → MEDIUM,  0.60 ≤ L < 0.80 → HIGH,  L ≥ 0.80 → VERY_HIGH
"""

import math
from collections.abc import Sequence

from schemas import ConfidenceLevel

Counts = tuple[float, float]
"""(successes, trials), decayed."""

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


def backed_off(k: float, n: float, parents: Sequence[tuple[float, float]], m: float) -> Counts:
    """(k̃, ñ): a claim's counts with pseudo-outcomes borrowed from coarser
    evidence while its own is thin, in the way the strategy ranker backs off
    (`strategy.bandit`; Katz, 1987, in conjugate form). `parents` are (k_j, n_j)
    from the finest coarser level to the coarsest, each the evidence of that level
    beyond the finer ones (for a sequence: other agent types in its cluster, then
    its other clusters in the tenant). With N_L = n_L and μ_L = k_L/n_L at the
    coarsest level, each finer level j (the claim itself last) borrows

        w_j = min(max(0, m − n_j), N_{j+1})
        k̃_j = k_j + w_j·μ_{j+1},   ñ_j = N_j = n_j + w_j,   μ_j = k̃_j/ñ_j

    so a claim with m or more outcomes of its own stands alone, one seen once
    leans on how the same actions did elsewhere, and one seen nowhere else keeps
    its own counts. Confidence is then L(k̃, ñ)."""
    levels = [(k, n), *parents]
    mean, total = 0.0, 0.0
    for level_k, level_n in reversed(levels):
        borrowed = min(max(0.0, m - level_n), total)
        k_tilde, total = level_k + borrowed * mean, level_n + borrowed
        mean = k_tilde / total if total > 0 else 0.0
    return mean * total, total
