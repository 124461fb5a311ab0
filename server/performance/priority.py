"""Priority of a finding from its effect and its evidence.

    effect = relative gain in [0, 1]: 1 − expected/current for a cost (time,
             iterations, actions), (expected − current)/(1 − current) for the success
             rate, i.e. the share of the loss the change removes
    weight = n / (n + EVIDENCE_HALF)      half weight at 20 executions, 0.83 at 100
    score  = effect × weight

    score ≥ 0.50 → CRITICAL,  ≥ 0.30 → HIGH,  ≥ 0.15 → MEDIUM,  else LOW

So halving the time of a category with 100 runs (0.5 × 0.83 = 0.42) is HIGH, the
same gain on 10 runs (0.5 × 0.33 = 0.17) MEDIUM; CRITICAL needs most of a large loss
removed on plenty of evidence.
"""

from schemas.performance import Priority

EVIDENCE_HALF = 20.0
PRIORITY_FLOORS = (
    (0.50, Priority.CRITICAL),
    (0.30, Priority.HIGH),
    (0.15, Priority.MEDIUM),
)


def clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def cost_gain(current: float, expected: float) -> float:
    """Share of a cost saved; 0 when there is no cost to save."""
    return clamp01(1.0 - expected / current) if current > 0 else 0.0


def success_gain(current: float, expected: float) -> float:
    """Share of the failures removed; 0 when nothing fails."""
    return clamp01((expected - current) / (1.0 - current)) if current < 1 else 0.0


def evidence_weight(n: int) -> float:
    return n / (n + EVIDENCE_HALF)


def score(effect: float, evidence: int) -> float:
    return clamp01(effect) * evidence_weight(evidence)


def priority_of(value: float) -> Priority:
    for floor, level in PRIORITY_FLOORS:
        if value >= floor:
            return level
    return Priority.LOW
