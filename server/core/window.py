"""The sliding window and its exponential decay ("only trains on the last
30 days"; "new tool used often becomes normal, old tool forgotten").

Evidence is tallied into `buckets` of width w = span / buckets, keyed by
b = ⌊t / w⌋. At time `now`, a bucket's weight is

    age(b)    = max(0, now − (b + 1)·w)
    weight(b) = 2^(−age(b) / h)   if (b + 1)·w > now − span,  else 0

with h the half-life. A decayed count is Σ_b weight(b)·count(b); a windowed count
is the same sum with weight 1 for every live bucket. Bucketing bounds the memory
of each tally to `buckets` entries and makes the window exact to one bucket width
(a day by default), and ages run from a bucket's end, so evidence of the
current bucket weighs exactly 1 and an age is short by at most one width. Sources: exponential forgetting as in exponentially weighted
moving averages (Roberts, 1959).
"""

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

DAY = 86_400.0

Tally = list[float]
"""One bucket's counters; what each position means is up to the tally's owner."""
Buckets = dict[int, Tally]


@dataclass(frozen=True, slots=True)
class Window:
    span_s: float = 30 * DAY
    half_life_s: float = 7 * DAY
    buckets: int = 30

    def __post_init__(self) -> None:
        if self.span_s <= 0 or self.half_life_s <= 0 or self.buckets < 1:
            raise ValueError("window span, half-life and bucket count must be positive")

    @property
    def width_s(self) -> float:
        return self.span_s / self.buckets

    def bucket(self, t: float) -> int:
        return math.floor(t / self.width_s)

    def live(self, bucket: int, now: float) -> bool:
        return (bucket + 1) * self.width_s > now - self.span_s

    def weight(self, bucket: int, now: float) -> float:
        """2^(−age/h) for a live bucket, 0 once it has left the window."""
        if not self.live(bucket, now):
            return 0.0
        age = max(0.0, now - (bucket + 1) * self.width_s)
        return math.pow(2.0, -age / self.half_life_s)


def add(buckets: Buckets, window: Window, t: float, values: Iterable[float]) -> None:
    """Add `values` position by position into the bucket of time `t`."""
    add_at(buckets, window.bucket(t), values)


def add_at(buckets: Buckets, bucket: int, values: Iterable[float]) -> None:
    """Add `values` position by position into bucket number `bucket`."""
    tally = buckets.get(bucket)
    if tally is None:
        buckets[bucket] = list(values)
        return
    for i, value in enumerate(values):
        tally[i] += value


class Weights:
    """weight(b) of every live bucket of a window at one `now`, and b_now = ⌊now / w⌋.
    Buckets after b_now are ahead of the clock (skew) and weigh 1. A fold reads
    thousands of tallies at one `now`, so the powers are taken once."""

    __slots__ = ("last", "live")

    def __init__(self, window: Window, now: float) -> None:
        self.last = window.bucket(now)
        first = self.last - window.buckets - 1
        weights = {b: window.weight(b, now) for b in range(first, self.last + 2)}
        self.live = {b: w for b, w in weights.items() if w > 0.0}

    def fold(self, buckets: Buckets, width: int) -> Tally:
        """Σ_b weight(b)·tally(b), position by position."""
        live, last = self.live, self.last
        total = [0.0] * width
        for b, tally in buckets.items():
            w = live.get(b, 0.0) if b <= last else 1.0
            if w > 0.0:
                for i in range(width):
                    total[i] += w * tally[i]
        return total

    def count(self, buckets: Buckets | None) -> float:
        """fold(buckets, 1)[0] without the list, 0 for no buckets: the hot path of
        scoring reads one counter per action and pair."""
        total = 0.0
        if buckets:
            live, last = self.live, self.last
            for b, tally in buckets.items():
                w = live.get(b, 0.0) if b <= last else 1.0
                if w > 0.0:
                    total += w * tally[0]
        return total


@functools.lru_cache(maxsize=16)
def weights_at(window: Window, now: float) -> Weights:
    """The (cached) `Weights` of `window` at `now`."""
    return Weights(window, now)


def decayed(buckets: Buckets, window: Window, now: float, width: int) -> Tally:
    """Σ_b weight(b)·tally(b), position by position. Buckets past `now` (clock skew)
    weigh 1."""
    return weights_at(window, now).fold(buckets, width)


def windowed(buckets: Buckets, window: Window, now: float, width: int) -> Tally:
    """Σ over live buckets, undecayed: the plain counts inside the window."""
    total = [0.0] * width
    for b, tally in buckets.items():
        if window.live(b, now):
            for i in range(width):
                total[i] += tally[i]
    return total


def prune(buckets: Buckets, window: Window, now: float) -> None:
    """Forget the buckets that have left the window."""
    for b in [b for b in buckets if not window.live(b, now)]:
        del buckets[b]


def recency(last_seen: float, now: float, half_life_s: float) -> float:
    """2^(−(now − last_seen)/h): 1 for evidence seen now, ½ one half-life ago."""
    return math.pow(2.0, -max(0.0, now - last_seen) / half_life_s)
