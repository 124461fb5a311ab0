"""A connection's bounded outbound queue.

Frames queue here between flushes; a flush takes them all as one buffer for one
transport write. The queue is bounded in bytes. When a push does not fit, the
lowest-priority pushes go first, oldest first; a push that outranks nothing queued
is itself dropped. Every drop is reported to the client by a `lagged` frame before
the next write. Nothing is evicted for a push that would not fit even then. A
connection that keeps dropping (more than `max_drops` since its
queue last emptied) is too slow: `push` says OVERFLOW and the caller closes it.
"""

import enum

from schemas import LaggedFrame, Priority, encode
from server.hub.wsframe import text_frame

CONTROL = len(Priority)
"""Rank of replies queued among pushes (subscribe): above CRITICAL, never dropped."""
ZEROS = (0,) * (CONTROL + 1)


class Verdict(enum.Enum):
    QUEUED = "queued"
    DROPPED = "dropped"
    OVERFLOW = "overflow"


class Outbox:
    __slots__ = (
        "_cursors",
        "_frames",
        "_rank_bytes",
        "_ranks",
        "_strikes",
        "_unreported",
        "dropped",
        "max_bytes",
        "max_drops",
        "queued_bytes",
    )

    def __init__(self, max_bytes: int, max_drops: int) -> None:
        self.max_bytes = max_bytes
        self.max_drops = max_drops
        self.queued_bytes = 0
        self.dropped = 0
        """Drops over the connection's life."""
        self._frames: list[bytes] = []
        self._ranks: list[int] = []
        """Two lists, not deques of entries: `take` empties them whole, an empty list
        holds no storage where an empty deque keeps a block (a budget of 20 KB
        per idle connection), and a push allocates nothing. An evicted frame becomes
        b"" in place; eviction, rare, scans for its victim."""
        self._rank_bytes = [0] * (CONTROL + 1)
        self._cursors: list[int] | None = None
        self._unreported = 0
        self._strikes = 0

    def __len__(self) -> int:
        return self.queued_bytes

    def push(self, frame: bytes, rank: int) -> Verdict:
        """Queue `frame`, making room by dropping lower-ranked frames if needed."""
        if not self.offer(frame, rank):
            size = len(frame)
            evictable = sum(self._rank_bytes[:rank])
            if self.queued_bytes - evictable + size > self.max_bytes:
                return self._drop()  # evicting would not make room: keep what is queued
            while self.queued_bytes + size > self.max_bytes:
                self._evict_below(rank)
            self.offer(frame, rank)
        return Verdict.OVERFLOW if self._strikes > self.max_drops else Verdict.QUEUED

    def offer(self, frame: bytes, rank: int) -> bool:
        """Queue `frame` if it fits as things are (CONTROL always does); False,
        having done nothing, when room must be made first (`push`). The fan-out's
        fast path: one call per delivery, nothing dropped, so no verdict to give."""
        size = len(frame)
        if self.queued_bytes + size > self.max_bytes and rank < CONTROL:
            return False
        self._frames.append(frame)
        self._ranks.append(rank)
        self._rank_bytes[rank] += size
        self.queued_bytes += size
        return True

    def take(self) -> bytes:
        """Everything queued, in order, as one buffer (a `lagged` frame first if
        pushes were dropped since the last take); the queue is left empty."""
        data = b"".join(self._frames)
        if self._unreported:
            data = text_frame(encode(LaggedFrame(dropped=self._unreported))) + data
        self._frames.clear()
        self._ranks.clear()
        self._cursors = None
        if self.queued_bytes:
            self._rank_bytes[:] = ZEROS
        self.queued_bytes = self._unreported = self._strikes = 0
        return data

    def _evict_below(self, rank: int) -> None:
        """Drop the oldest frame of the lowest rank below `rank` (one exists)."""
        lower = next(r for r in range(rank) if self._rank_bytes[r])
        i = self._next_of(lower)
        size = len(self._frames[i])
        self._frames[i] = b""
        self._rank_bytes[lower] -= size
        self.queued_bytes -= size
        self._count_drop()

    def _next_of(self, rank: int) -> int:
        """The index of the oldest live frame of `rank`; each rank's scan resumes
        where its last one stopped, so evictions cost O(queue) between takes."""
        cursors = self._cursors = self._cursors or [0] * (CONTROL + 1)
        i, frames, ranks = cursors[rank], self._frames, self._ranks
        while not (frames[i] and ranks[i] == rank):
            i += 1
        cursors[rank] = i + 1
        return i

    def _drop(self) -> Verdict:
        self._count_drop()
        return Verdict.OVERFLOW if self._strikes > self.max_drops else Verdict.DROPPED

    def _count_drop(self) -> None:
        self.dropped += 1
        self._unreported += 1
        self._strikes += 1
