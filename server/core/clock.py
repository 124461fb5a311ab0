"""Time: the store keeps epoch seconds, the contract speaks UTC datetimes.

Everything that ages (learning windows, decay, recency, anomaly baselines) reads a
`Clock`, so tests drive weeks of time with a `ManualClock` instead of sleeping.
"""

import time
from datetime import UTC, datetime
from typing import Protocol


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to: starts at the real time."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock never goes back")
        self._now += seconds
