"""The knowledge hub's storage: channels, knowledge messages, votes and the
full-text index, on the SQLite store's writer and readers."""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.db.writer import Built, Writer
from server.hub import store_sql as sql

Fetch = Callable[[str, tuple[Any, ...]], Awaitable[list[sqlite3.Row]]]


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    tenant: str
    name: str
    epoch: str
    last_seq: int
    created_at: float


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A message as published: `body` is its encoded `KnowledgeMessage`."""

    id: int
    tenant: str
    channel: str
    seq: int
    rank: int
    kind: str
    source_agent: str
    tags: list[str]
    title: str
    content: str
    created_at: float
    body: bytes


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    channel: str
    seq: int
    body: bytes
    votes: int
    applications: int
    views: int


@dataclass(frozen=True, slots=True)
class Search:
    tenant: str
    min_rank: int
    channels: list[str] | None
    tags: list[str]
    kind: str | None
    text: str | None
    limit: int
    after_id: int | None = None
    skip: int = 0


class HubStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch
        self._next_id = 1

    async def open(self) -> None:
        rows = await self._fetch(sql.MAX_KNOWLEDGE_ID, ())
        self._next_id = int(rows[0][0]) + 1

    async def channels(self) -> list[ChannelRecord]:
        return [ChannelRecord(*r) for r in await self._fetch(sql.ALL_CHANNELS, ())]

    async def create_channels(self, records: list[ChannelRecord]) -> None:
        rows = [(r.tenant, r.name, r.epoch, r.created_at) for r in records]
        await self._writer().submit([(sql.INSERT_CHANNEL, rows)])

    async def delete_channel(self, tenant: str, name: str) -> None:
        """Delete a channel with its history, in one transaction."""
        key = [(tenant, name)]
        await self._writer().submit(
            [
                (sql.DELETE_CHANNEL_FTS, key),
                (sql.DELETE_CHANNEL_VOTES, key),
                (sql.DELETE_CHANNEL_KNOWLEDGE, key),
                (sql.DELETE_CHANNEL, key),
            ]
        )

    async def append(
        self,
        build: Callable[[int], MessageRecord],
        on_commit: Callable[[MessageRecord], None],
    ) -> MessageRecord:
        """Store one message. `build(id)` runs once the write has its place in the
        queue, so the offsets it assigns grow in commit order; `on_commit` runs
        right after the commit, in that order. Cancelling leaves the fate unknown."""
        built: list[MessageRecord] = []
        await self._writer().submit_built(self._numbered(build, on_commit, built.append))
        return built[0]

    def has_room(self) -> bool:
        """Whether `append_soon` can queue a message now."""
        return self._writer().has_room()

    def append_soon(
        self,
        build: Callable[[int], MessageRecord],
        on_commit: Callable[[MessageRecord], None],
    ) -> asyncio.Future[None]:
        """`append` without waiting, when `has_room()`: the message is queued now and
        the returned future resolves after its commit and `on_commit`. Raises
        Unavailable when the queue has no room."""
        return self._writer().submit_soon(self._numbered(build, on_commit))

    def _numbered(
        self,
        build: Callable[[int], MessageRecord],
        on_commit: Callable[[MessageRecord], None],
        keep: Callable[[MessageRecord], None] | None = None,
    ) -> Callable[[], Built]:
        """What the writer calls once the write has its place: the next id, the
        record `build` makes of it, and its steps."""

        def steps() -> Built:
            record = build(self._next_id)
            self._next_id += 1
            if keep is not None:
                keep(record)
            return _append_steps(record), lambda: on_commit(record)

        return steps

    async def history(
        self, tenant: str, channel: str, after: int, tip: int, min_created: float, limit: int
    ) -> list[tuple[int, int, str, bytes]]:
        rows = await self._fetch(sql.HISTORY, (tenant, channel, after, tip, min_created, limit))
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def get(self, tenant: str, knowledge_id: int) -> StoredMessage | None:
        rows = await self._fetch(sql.GET_KNOWLEDGE, (tenant, knowledge_id))
        return StoredMessage(*rows[0]) if rows else None

    async def add_view(self, tenant: str, knowledge_id: int) -> None:
        await self._writer().submit([(sql.ADD_VIEW, [(tenant, knowledge_id)])])

    async def vote(self, tenant: str, knowledge_id: int, agent: str) -> bool:
        """Count `agent`'s vote once; False if it had voted already."""
        if await self._fetch(sql.HAS_VOTED, (knowledge_id, agent)):
            return False
        await self._writer().submit(
            [
                (sql.INSERT_VOTE, [(knowledge_id, agent)]),
                (sql.COUNT_VOTES, [(knowledge_id, tenant, knowledge_id)]),
            ]
        )
        return True

    async def add_application(self, tenant: str, knowledge_id: int) -> None:
        await self._writer().submit([(sql.ADD_APPLICATION, [(tenant, knowledge_id)])])

    async def search(self, q: Search) -> list[StoredMessage]:
        query = sql.search(
            text=q.text is not None,
            channels=len(q.channels or ()),
            tags=len(q.tags),
            kind=q.kind is not None,
            after_id=q.after_id is not None,
        )
        params: list[Any] = [q.tenant, q.min_rank, *(q.channels or ())]
        params += [f",{tag}," for tag in q.tags]
        params += [q.kind] if q.kind is not None else []
        if q.text is not None:
            params += [q.text, q.limit, q.skip]
        else:
            params += [q.after_id] if q.after_id is not None else []
            params.append(q.limit)
        return [StoredMessage(*r) for r in await self._fetch(query, tuple(params))]

    async def popular(
        self, tenant: str, channels: list[str] | None, limit: int
    ) -> list[StoredMessage]:
        query = sql.popular(len(channels or ()))
        rows = await self._fetch(query, (tenant, *(channels or ()), limit))
        return [StoredMessage(*r) for r in rows]

    async def prune(self, cuts: list[tuple[str, str, int]]) -> None:
        """Delete each (tenant, channel)'s messages up to its offset, remembering
        the channel's last offset so offsets keep growing after a full prune."""
        await self._writer().submit(
            [
                (sql.SAVE_LAST_SEQ, [(seq, t, c) for t, c, seq in cuts]),
                (sql.PRUNE_FTS, cuts),
                (sql.PRUNE_VOTES, cuts),
                (sql.PRUNE, cuts),
            ]
        )

    async def expired(self, cutoff: float) -> list[tuple[str, str, int]]:
        """(tenant, channel, highest offset) of the messages older than `cutoff`."""
        return [(r[0], r[1], r[2]) for r in await self._fetch(sql.EXPIRED_CUTS, (cutoff,))]


def _append_steps(r: MessageRecord) -> list[Any]:
    tags = ",".join(r.tags)
    row = (
        r.id,
        r.tenant,
        r.channel,
        r.seq,
        r.rank,
        r.kind,
        r.source_agent,
        tags,
        r.created_at,
        r.body,
    )
    return [
        (sql.INSERT_KNOWLEDGE, [row]),
        (sql.INSERT_FTS, [(r.id, r.title, r.content, " ".join(r.tags))]),
    ]
