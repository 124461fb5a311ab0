"""The knowledge hub's storage: channels, knowledge messages, votes and the
full-text index, on the SQLite store's writer and readers."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.db.database import Fetch
from server.db.writer import Built, Insert, Writer

ALL_CHANNELS = """
SELECT c.tenant, c.name, c.epoch, max(c.last_seq, coalesce(max(k.seq), 0)), c.created_at
FROM channels c LEFT JOIN knowledge k ON k.tenant = c.tenant AND k.channel = c.name
GROUP BY c.tenant, c.name
"""
INSERT_CHANNEL = (
    "INSERT OR IGNORE INTO channels (tenant, name, epoch, created_at) VALUES (?, ?, ?, ?)"
)
DELETE_CHANNEL = "DELETE FROM channels WHERE tenant = ? AND name = ?"
DELETE_CHANNEL_FTS = """
DELETE FROM knowledge_fts WHERE rowid IN
    (SELECT id FROM knowledge WHERE tenant = ? AND channel = ?)
"""
DELETE_CHANNEL_VOTES = """
DELETE FROM knowledge_votes WHERE knowledge_id IN
    (SELECT id FROM knowledge WHERE tenant = ? AND channel = ?)
"""
DELETE_CHANNEL_KNOWLEDGE = "DELETE FROM knowledge WHERE tenant = ? AND channel = ?"
MAX_KNOWLEDGE_ID = "SELECT coalesce(max(id), 0) FROM knowledge"

INSERT_KNOWLEDGE = Insert(
    "INSERT INTO knowledge (id, tenant, channel, seq, rank, kind, source_agent, tags, "
    "created_at, body) VALUES",
    10,
)
INSERT_FTS = Insert("INSERT INTO knowledge_fts (rowid, title, content, tags) VALUES", 4)

HISTORY = """
SELECT seq, rank, kind, body FROM knowledge
WHERE tenant = ? AND channel = ? AND seq > ? AND seq <= ? AND created_at >= ?
ORDER BY seq LIMIT ?
"""

_COLUMNS = "k.id, k.channel, k.seq, k.body, k.votes, k.applications, k.views"
GET_KNOWLEDGE = f"SELECT {_COLUMNS} FROM knowledge k WHERE k.tenant = ? AND k.id = ?"
ADD_VIEW = "UPDATE knowledge SET views = views + 1 WHERE tenant = ? AND id = ?"
HAS_VOTED = "SELECT 1 FROM knowledge_votes WHERE knowledge_id = ? AND agent = ?"
INSERT_VOTE = "INSERT OR IGNORE INTO knowledge_votes (knowledge_id, agent) VALUES (?, ?)"
COUNT_VOTES = """
UPDATE knowledge SET votes = (SELECT count(*) FROM knowledge_votes WHERE knowledge_id = ?)
WHERE tenant = ? AND id = ?
"""
ADD_APPLICATION = "UPDATE knowledge SET applications = applications + 1 WHERE tenant = ? AND id = ?"

PRUNE_FTS = """
DELETE FROM knowledge_fts WHERE rowid IN
    (SELECT id FROM knowledge WHERE tenant = ? AND channel = ? AND seq <= ?)
"""
PRUNE_VOTES = """
DELETE FROM knowledge_votes WHERE knowledge_id IN
    (SELECT id FROM knowledge WHERE tenant = ? AND channel = ? AND seq <= ?)
"""
PRUNE = "DELETE FROM knowledge WHERE tenant = ? AND channel = ? AND seq <= ?"
SAVE_LAST_SEQ = "UPDATE channels SET last_seq = max(last_seq, ?) WHERE tenant = ? AND name = ?"
EXPIRED_CUTS = """
SELECT tenant, channel, max(seq) FROM knowledge WHERE created_at < ? GROUP BY tenant, channel
"""


def search(*, text: bool, channels: int, tags: int, kind: bool, after_id: bool) -> str:
    """A knowledge query with the filters asked for. With `text`, rows are ranked by
    FTS5's BM25 (best first, offset paginated); without, newest first (keyset)."""
    where = ["k.tenant = ?", "k.rank >= ?"]
    if channels:
        where.append(f"k.channel IN ({', '.join('?' * channels)})")
    where += ["instr(',' || k.tags || ',', ?) > 0"] * tags
    if kind:
        where.append("k.kind = ?")
    if text:
        where.append("knowledge_fts MATCH ?")
        return (
            f"SELECT {_COLUMNS} FROM knowledge_fts JOIN knowledge k ON k.id = knowledge_fts.rowid "
            f"WHERE {' AND '.join(where)} ORDER BY bm25(knowledge_fts), k.id DESC LIMIT ? OFFSET ?"
        )
    if after_id:
        where.append("k.id < ?")
    return (
        f"SELECT {_COLUMNS} FROM knowledge k WHERE {' AND '.join(where)} ORDER BY k.id DESC LIMIT ?"
    )


def popular(channels: int) -> str:
    """Ranked by popularity = votes + 2 · applications (server/hub/popularity.py)."""
    where = ["k.tenant = ?", "(k.votes > 0 OR k.applications > 0)"]
    if channels:
        where.append(f"k.channel IN ({', '.join('?' * channels)})")
    return (
        f"SELECT {_COLUMNS} FROM knowledge k WHERE {' AND '.join(where)} "
        "ORDER BY k.votes + 2 * k.applications DESC, k.id DESC LIMIT ?"
    )


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
        rows = await self._fetch(MAX_KNOWLEDGE_ID, ())
        self._next_id = int(rows[0][0]) + 1

    async def channels(self) -> list[ChannelRecord]:
        return [ChannelRecord(*r) for r in await self._fetch(ALL_CHANNELS, ())]

    async def create_channels(self, records: list[ChannelRecord]) -> None:
        rows = [(r.tenant, r.name, r.epoch, r.created_at) for r in records]
        await self._writer().submit([(INSERT_CHANNEL, rows)])

    async def delete_channel(self, tenant: str, name: str) -> None:
        """Delete a channel with its history, in one transaction."""
        key = [(tenant, name)]
        await self._writer().submit(
            [
                (DELETE_CHANNEL_FTS, key),
                (DELETE_CHANNEL_VOTES, key),
                (DELETE_CHANNEL_KNOWLEDGE, key),
                (DELETE_CHANNEL, key),
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
        rows = await self._fetch(HISTORY, (tenant, channel, after, tip, min_created, limit))
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def get(self, tenant: str, knowledge_id: int) -> StoredMessage | None:
        rows = await self._fetch(GET_KNOWLEDGE, (tenant, knowledge_id))
        return StoredMessage(*rows[0]) if rows else None

    async def add_view(self, tenant: str, knowledge_id: int) -> None:
        await self._writer().submit([(ADD_VIEW, [(tenant, knowledge_id)])])

    async def vote(self, tenant: str, knowledge_id: int, agent: str) -> bool:
        """Count `agent`'s vote once; False if it had voted already."""
        if await self._fetch(HAS_VOTED, (knowledge_id, agent)):
            return False
        await self._writer().submit(
            [
                (INSERT_VOTE, [(knowledge_id, agent)]),
                (COUNT_VOTES, [(knowledge_id, tenant, knowledge_id)]),
            ]
        )
        return True

    async def add_application(self, tenant: str, knowledge_id: int) -> None:
        await self._writer().submit([(ADD_APPLICATION, [(tenant, knowledge_id)])])

    async def search(self, q: Search) -> list[StoredMessage]:
        query = search(
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
        query = popular(len(channels or ()))
        rows = await self._fetch(query, (tenant, *(channels or ()), limit))
        return [StoredMessage(*r) for r in rows]

    async def prune(self, cuts: list[tuple[str, str, int]]) -> None:
        """Delete each (tenant, channel)'s messages up to its offset, remembering
        the channel's last offset so offsets keep growing after a full prune."""
        await self._writer().submit(
            [
                (SAVE_LAST_SEQ, [(seq, t, c) for t, c, seq in cuts]),
                (PRUNE_FTS, cuts),
                (PRUNE_VOTES, cuts),
                (PRUNE, cuts),
            ]
        )

    async def expired(self, cutoff: float) -> list[tuple[str, str, int]]:
        """(tenant, channel, highest offset) of the messages older than `cutoff`."""
        return [(r[0], r[1], r[2]) for r in await self._fetch(EXPIRED_CUTS, (cutoff,))]


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
        (INSERT_KNOWLEDGE, [row]),
        (INSERT_FTS, [(r.id, r.title, r.content, " ".join(r.tags))]),
    ]
