"""Publish rate limits: one token bucket per token."""

from collections.abc import Callable
from dataclasses import dataclass, field

EPSILON = 1e-9
"""Float slack: after waiting exactly the time `take` named, the refill may land a
hair under one token (rounding), and must still count as one."""


@dataclass(slots=True)
class TokenBucket:
    """The token bucket (Turner, 1986): `burst` tokens at most, refilled at `rate`
    per second. After t seconds, tokens = min(burst, tokens + rate · t); a publish
    takes one. A full bucket allows `burst` publishes at once, then `rate` per second."""

    rate: float
    burst: float
    clock: Callable[[], float]
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.stamp = self.clock()

    def take(self) -> float:
        """Take one token: 0.0 if allowed, else the seconds until one is free."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1 - EPSILON:
            self.tokens = max(self.tokens - 1, 0.0)
            return 0.0
        return (1 - self.tokens) / self.rate
