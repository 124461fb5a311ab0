"""The channel book: every tenant's channels, their epochs and offsets, in memory.

Offsets are handed out here (`tip`) when a publish takes its place in the write
queue, and `committed` follows the commits; subscribers only ever see committed
offsets. An epoch is drawn when a channel is created: a channel deleted and
created again has lost its history, and its new epoch says so.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from schemas import ChannelInfo
from server.core.clock import utc
from server.core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from server.hub.names import DEFAULT_CHANNELS, is_pattern, matches
from server.hub.store import ChannelRecord, HubStore


@dataclass(eq=False, slots=True)
class Channel:
    tenant: str
    name: str
    epoch: str
    tip: int
    committed: int
    created_at: float
    pruned: int = 0
    """Offsets up to this one have been deleted by the pruner."""

    def info(self) -> ChannelInfo:
        return ChannelInfo(
            name=self.name,
            epoch=self.epoch,
            offset=self.committed,
            default=self.name in DEFAULT_CHANNELS,
            created_at=utc(self.created_at),
        )


class ChannelBook:
    def __init__(self, store: HubStore, clock: Callable[[], float], max_channels: int) -> None:
        self._store = store
        self._clock = clock
        self._max = max_channels
        self._tenants: dict[str, dict[str, Channel]] = {}

    async def load(self) -> None:
        for r in await self._store.channels():
            book = self._tenants.setdefault(r.tenant, {})
            book[r.name] = Channel(r.tenant, r.name, r.epoch, r.last_seq, r.last_seq, r.created_at)

    async def of(self, tenant: str) -> dict[str, Channel]:
        """The tenant's channels, creating its default channels on first use."""
        book = self._tenants.get(tenant)
        if book is None or any(name not in book for name in DEFAULT_CHANNELS):
            await self._create(tenant, [n for n in DEFAULT_CHANNELS if n not in (book or {})])
            book = self._tenants[tenant]
        return book

    async def get(self, tenant: str, name: str) -> Channel:
        found = (await self.of(tenant)).get(name)
        if found is None:
            raise NotFound("no such channel", channel=name)
        return found

    async def matching(self, tenant: str, pattern: str) -> list[Channel]:
        """The channels a subscription or query names; an exact name must exist."""
        if not is_pattern(pattern):
            return [await self.get(tenant, pattern)]
        book = await self.of(tenant)
        return [c for name, c in sorted(book.items()) if matches(pattern, name)]

    async def create(self, tenant: str, name: str) -> Channel:
        book = await self.of(tenant)
        if name in book:
            raise Conflict("the channel exists", channel=name)
        if len(book) >= self._max:
            raise InvalidRequest("too many channels", max_channels=self._max)
        await self._create(tenant, [name])
        return self._tenants[tenant][name]

    async def delete(self, tenant: str, name: str) -> Channel:
        if name in DEFAULT_CHANNELS:
            raise Forbidden("default channels cannot be deleted", channel=name)
        channel = await self.get(tenant, name)
        await self._store.delete_channel(tenant, name)
        self._tenants[tenant].pop(name, None)
        return channel

    def all(self) -> list[Channel]:
        return [c for book in self._tenants.values() for c in book.values()]

    def mine(self, tenant: str) -> list[Channel]:
        return list(self._tenants.get(tenant, {}).values())

    def find(self, tenant: str, name: str) -> Channel | None:
        return self._tenants.get(tenant, {}).get(name)

    async def _create(self, tenant: str, names: list[str]) -> None:
        now = self._clock()
        records = [ChannelRecord(tenant, n, secrets.token_hex(4), 0, now) for n in names]
        await self._store.create_channels(records)
        book = self._tenants.setdefault(tenant, {})
        for r in records:
            book.setdefault(r.name, Channel(tenant, r.name, r.epoch, 0, 0, now))
