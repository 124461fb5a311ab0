"""Publish rate limits: one token bucket per token."""

from collections.abc import Callable
from dataclasses import dataclass, field


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
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate
