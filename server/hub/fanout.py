"""Fan-out: committed messages to subscribers' outboxes, outboxes to sockets.

Publishing never awaits a subscriber. A delivery is appended to each interested
connection's outbox (server/hub/outbox.py); a flush, scheduled once for however
many deliveries arrive meanwhile (after `write_delay_s`), writes each dirty
outbox to its socket in one call. A socket whose send buffer is above
`high_water` is skipped and retried: its outbox absorbs the backlog, dropping its
lowest priorities first, and past its limit the connection is closed as too slow.
"""

import asyncio
from dataclasses import dataclass

from server.hub.outbox import Verdict
from server.hub.subscriptions import Delivery, Peer, Registry, route

STALLED_RETRY_S = 0.005


@dataclass(slots=True)
class FanoutStats:
    delivered: int = 0
    dropped: int = 0
    slow_closed: int = 0


class Fanout:
    def __init__(self, write_delay_s: float, high_water: int) -> None:
        self.registry = Registry()
        self.stats = FanoutStats()
        self._delay = write_delay_s
        self._high_water = high_water
        self._dirty: set[Peer] = set()
        self._flush_at: asyncio.Handle | None = None

    def deliver(self, tenant: str, delivery: Delivery) -> None:
        """Queue one committed message for every connection that wants it. This
        loop runs once per delivery: a frame that
        fits is one `offer`; only a full outbox takes `push` and its drop rules."""
        live = route(self.registry.targets(tenant, delivery.channel), delivery)
        frame, rank = delivery.frame, delivery.rank
        for peer in live:
            if not peer.outbox.offer(frame, rank):
                self.push(peer, frame, rank)
        self.stats.delivered += len(live)
        if live:
            self._dirty.update(live)
            self._flush_soon()

    def push(self, peer: Peer, frame: bytes, rank: int) -> None:
        """Queue one frame for one connection and make sure a flush will come."""
        before = peer.outbox.dropped
        verdict = peer.outbox.push(frame, rank)
        if peer.outbox.dropped != before:
            self._account(peer, verdict, peer.outbox.dropped - before)
        self._dirty.add(peer)
        self._flush_soon()

    def _flush_soon(self) -> None:
        """Make sure a flush will come (one for however many pushes meanwhile)."""
        if self._flush_at is None:
            self._schedule(self._delay)

    def flush(self) -> None:
        """Write every dirty outbox whose socket can take it, in one call each."""
        self._flush_at = None
        stalled: set[Peer] = set()
        for peer in self._dirty:
            if peer.sink.closing():
                peer.outbox.take()
            elif peer.sink.buffered() > self._high_water:
                stalled.add(peer)
            elif data := peer.outbox.take():
                peer.sink.write(data)
        self._dirty = stalled
        if stalled:
            self._schedule(max(self._delay, STALLED_RETRY_S))

    def forget(self, peer: Peer) -> None:
        self._dirty.discard(peer)
        peer.outbox.take()

    def _account(self, peer: Peer, verdict: Verdict, dropped: int) -> None:
        self.stats.dropped += dropped
        if verdict is Verdict.OVERFLOW and not peer.sink.closing():
            self.stats.slow_closed += 1
            peer.sink.close_slow()

    def _schedule(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        if delay:
            self._flush_at = loop.call_later(delay, self.flush)
        else:
            self._flush_at = loop.call_soon(self.flush)
