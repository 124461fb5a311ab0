"""The subscription index: which connections want a message published on a channel."""

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

from server.hub.names import is_pattern, matches
from server.hub.outbox import Outbox


@dataclass(frozen=True, slots=True)
class Delivery:
    """One committed message, encoded once as a WebSocket frame for everyone."""

    channel: str
    offset: int
    rank: int
    kind: str
    frame: bytes


class Sink(Protocol):
    """The transport under a connection, as the hub sees it."""

    def write(self, data: bytes) -> None: ...
    def buffered(self) -> int: ...
    def closing(self) -> bool: ...
    def close_slow(self) -> None: ...


@dataclass(eq=False, slots=True)
class Peer:
    """One connection's share of the hub: its outbox and its subscriptions."""

    tenant: str
    sink: Sink
    outbox: Outbox
    subs: dict[str, "Sub"] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Sub:
    peer: Peer
    pattern: str
    min_rank: int
    kinds: frozenset[str] | None
    buffer: list[Delivery] | None = None
    """Live deliveries held back while history is replayed (None once live)."""

    def wants(self, rank: int, kind: str) -> bool:
        return rank >= self.min_rank and (self.kinds is None or kind in self.kinds)


Target = tuple[Peer, tuple[Sub, ...]]


class Registry:
    """Exact subscriptions by channel, patterns by tenant, and a per-channel cache
    of the resolved targets (one entry per connection), rebuilt after a change."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, set[Sub]]] = defaultdict(lambda: defaultdict(set))
        self._patterns: dict[str, set[Sub]] = defaultdict(set)
        self._cache: dict[str, dict[str, list[Target]]] = defaultdict(dict)

    def add(self, sub: Sub) -> None:
        tenant = sub.peer.tenant
        if is_pattern(sub.pattern):
            self._patterns[tenant].add(sub)
        else:
            self._exact[tenant][sub.pattern].add(sub)
        self._cache.pop(tenant, None)

    def remove(self, sub: Sub) -> None:
        tenant = sub.peer.tenant
        if is_pattern(sub.pattern):
            self._patterns[tenant].discard(sub)
        else:
            self._exact[tenant][sub.pattern].discard(sub)
        self._cache.pop(tenant, None)

    def targets(self, tenant: str, channel: str) -> list[Target]:
        cached = self._cache[tenant].get(channel)
        if cached is None:
            cached = self._cache[tenant][channel] = self._resolve(tenant, channel)
        return cached

    def _resolve(self, tenant: str, channel: str) -> list[Target]:
        by_peer: dict[Peer, list[Sub]] = defaultdict(list)
        for sub in self._exact[tenant].get(channel, ()):
            by_peer[sub.peer].append(sub)
        for sub in self._patterns[tenant]:
            if matches(sub.pattern, channel):
                by_peer[sub.peer].append(sub)
        return [(peer, tuple(subs)) for peer, subs in by_peer.items()]

    def count(self) -> int:
        exact = sum(len(s) for chans in self._exact.values() for s in chans.values())
        return exact + sum(len(s) for s in self._patterns.values())


def route(targets: list[Target], delivery: Delivery) -> list[Peer]:
    """The connections to queue `delivery` for now: those with a live subscription
    that wants it. A connection whose only wanting subscription is recovering gets
    it in that subscription's buffer instead. Never awaits; `Sub.wants` is inlined,
    this loop runs once per delivery."""
    rank, kind = delivery.rank, delivery.kind
    live: list[Peer] = []
    for peer, subs in targets:
        held: Sub | None = None
        for sub in subs:
            if rank >= sub.min_rank and (sub.kinds is None or kind in sub.kinds):
                if sub.buffer is None:
                    live.append(peer)
                    break
                held = sub
        else:
            if held is not None and held.buffer is not None:
                held.buffer.append(delivery)
    return live
