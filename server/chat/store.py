"""Storage of chat sessions, their messages, memory items (with their embedding and
full-text index) and the training examples prepared from them."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from server.db.database import Fetch
from server.db.writer import Step, Writer

SESSION_COLUMNS = "id, agent, state, started_at, last_activity, ended_at, metadata, report"
INSERT_SESSION = """
INSERT INTO chat_sessions (id, tenant, agent, state, started_at, last_activity, metadata)
VALUES (?, ?, ?, 'open', ?, ?, ?)
"""
GET_SESSION = f"SELECT {SESSION_COLUMNS} FROM chat_sessions WHERE tenant = ? AND id = ?"
SESSIONS_IN_STATE = f"SELECT tenant, {SESSION_COLUMNS} FROM chat_sessions WHERE state = ?"
TOUCH = "UPDATE chat_sessions SET last_activity = ? WHERE tenant = ? AND id = ?"
INSERT_MESSAGE = """
INSERT INTO chat_messages (tenant, session_id, seq, role, content, metadata, at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
MESSAGE_COUNTS = """
SELECT m.tenant, m.session_id, count(*) FROM chat_messages m
JOIN chat_sessions s ON s.tenant = m.tenant AND s.id = m.session_id
WHERE s.state = 'open' GROUP BY m.tenant, m.session_id
"""
MESSAGES = """
SELECT role, content, metadata, at FROM chat_messages
WHERE tenant = ? AND session_id = ? ORDER BY seq
"""
MESSAGE_COUNT = "SELECT count(*) FROM chat_messages WHERE tenant = ? AND session_id = ?"
END = """
UPDATE chat_sessions SET state = 'ended', ended_at = ?, last_activity = ?
WHERE tenant = ? AND id = ? AND state = 'open'
"""
PROCESSED = "UPDATE chat_sessions SET state = 'processed', report = ? WHERE tenant = ? AND id = ?"
MAX_MEMORY_ID = "SELECT coalesce(max(id), 0) FROM memory_items"
INSERT_MEMORY = """
INSERT INTO memory_items (id, tenant, session_id, role, content, at, vector)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
INSERT_MEMORY_FTS = "INSERT INTO memory_fts (rowid, content) VALUES (?, ?)"
ALL_MEMORY_VECTORS = "SELECT id, tenant, vector FROM memory_items WHERE vector IS NOT NULL"
MEMORY_BY_IDS = (
    "SELECT id, session_id, role, content, at FROM memory_items WHERE +tenant = ? AND id IN ({})"
)
SEARCH_MEMORY = """
SELECT m.id, bm25(memory_fts) FROM memory_fts JOIN memory_items m ON m.id = memory_fts.rowid
WHERE memory_fts MATCH ? AND m.tenant = ? ORDER BY bm25(memory_fts) LIMIT ?
"""
INSERT_EXAMPLE = """
INSERT INTO training_examples (tenant, source, context, instruction, output, created_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
TENANT_EXAMPLES = """
SELECT tenant, source, context, instruction, output, created_at FROM training_examples
WHERE tenant = ? ORDER BY id DESC LIMIT ?
"""
EXAMPLES_SINCE = """
SELECT tenant, source, context, instruction, output, created_at FROM training_examples
WHERE created_at >= ? ORDER BY id LIMIT ?
"""
STATS = """
SELECT
  (SELECT count(*) FROM chat_sessions WHERE tenant = ?1 AND state = 'open'),
  (SELECT count(*) FROM chat_sessions WHERE tenant = ?1 AND state = 'processed'),
  (SELECT count(*) FROM chat_messages WHERE tenant = ?1),
  (SELECT count(*) FROM memory_items WHERE tenant = ?1),
  (SELECT count(*) FROM training_examples WHERE tenant = ?1 AND source = 'session')
"""


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    agent: str
    state: str
    started_at: float
    last_activity: float
    ended_at: float | None
    metadata: bytes
    report: bytes | None


@dataclass(frozen=True, slots=True)
class MemoryRow:
    session_id: str
    role: str
    content: str
    at: float
    vector: bytes | None


@dataclass(frozen=True, slots=True)
class ExampleRow:
    tenant: str
    source: str
    context: str
    instruction: str
    output: str
    created_at: float


class ChatStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch
        self._next_memory_id = 1

    async def open(self) -> None:
        self._next_memory_id = int((await self._fetch(MAX_MEMORY_ID, ()))[0][0]) + 1

    async def create(self, tenant: str, sid: str, agent: str, at: float, metadata: bytes) -> None:
        """Raises sqlite3.IntegrityError when the id is taken. Cancelling leaves
        the write's fate unknown."""
        await self._writer().submit([(INSERT_SESSION, [(sid, tenant, agent, at, at, metadata)])])

    async def get(self, tenant: str, sid: str) -> SessionRow | None:
        rows = await self._fetch(GET_SESSION, (tenant, sid))
        return _session(rows[0]) if rows else None

    async def in_state(self, state: str) -> list[tuple[str, SessionRow]]:
        return [(r[0], _session(r[1:])) for r in await self._fetch(SESSIONS_IN_STATE, (state,))]

    async def open_message_counts(self) -> dict[tuple[str, str], int]:
        return {(r[0], r[1]): int(r[2]) for r in await self._fetch(MESSAGE_COUNTS, ())}

    async def add_message(
        self, tenant: str, sid: str, seq: int, role: str, content: str, metadata: bytes, at: float
    ) -> None:
        steps: list[Step] = [
            (INSERT_MESSAGE, [(tenant, sid, seq, role, content, metadata, at)]),
            (TOUCH, [(at, tenant, sid)]),
        ]
        await self._writer().submit(steps)

    async def messages(self, tenant: str, sid: str) -> list[tuple[str, str, bytes, float]]:
        rows = await self._fetch(MESSAGES, (tenant, sid))
        return [(r[0], r[1], bytes(r[2]), float(r[3])) for r in rows]

    async def message_count(self, tenant: str, sid: str) -> int:
        return int((await self._fetch(MESSAGE_COUNT, (tenant, sid)))[0][0])

    async def end(self, tenant: str, sid: str, at: float) -> None:
        await self._writer().submit([(END, [(at, at, tenant, sid)])])

    async def processed(self, tenant: str, sid: str, report: bytes) -> None:
        await self._writer().submit([(PROCESSED, [(report, tenant, sid)])])

    async def add_memory(self, tenant: str, rows: Sequence[MemoryRow]) -> list[int]:
        """Ids of the stored items, after the commit."""
        first = self._next_memory_id
        self._next_memory_id += len(rows)
        ids = list(range(first, first + len(rows)))
        values = [
            (i, tenant, r.session_id, r.role, r.content, r.at, r.vector)
            for i, r in zip(ids, rows, strict=True)
        ]
        fts = [(i, r.content) for i, r in zip(ids, rows, strict=True)]
        await self._writer().submit([(INSERT_MEMORY, values), (INSERT_MEMORY_FTS, fts)])
        return ids

    async def memory_vectors(self) -> list[tuple[int, str, bytes]]:
        rows = await self._fetch(ALL_MEMORY_VECTORS, ())
        return [(int(r[0]), r[1], bytes(r[2])) for r in rows]

    async def memory_by_ids(self, tenant: str, ids: Sequence[int]) -> dict[int, MemoryRow]:
        if not ids:
            return {}
        query = MEMORY_BY_IDS.format(",".join("?" * len(ids)))
        rows = await self._fetch(query, (tenant, *ids))
        return {int(r[0]): MemoryRow(r[1], r[2], r[3], float(r[4]), None) for r in rows}

    async def search_memory(self, tenant: str, match: str, limit: int) -> list[tuple[int, float]]:
        """(id, BM25 with higher better) of the tenant's items matching an FTS5 query."""
        rows = await self._fetch(SEARCH_MEMORY, (match, tenant, limit))
        return [(int(r[0]), -float(r[1])) for r in rows]

    async def add_examples(self, rows: Sequence[ExampleRow]) -> None:
        values = [
            (r.tenant, r.source, r.context, r.instruction, r.output, r.created_at) for r in rows
        ]
        await self._writer().submit([(INSERT_EXAMPLE, values)])

    async def examples_since(self, since: float, limit: int) -> list[ExampleRow]:
        rows = await self._fetch(EXAMPLES_SINCE, (since, limit))
        return [ExampleRow(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]

    async def examples_of(self, tenant: str, limit: int) -> list[ExampleRow]:
        """The tenant's latest training examples, newest first."""
        rows = await self._fetch(TENANT_EXAMPLES, (tenant, limit))
        return [ExampleRow(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]

    async def stats(self, tenant: str) -> tuple[int, int, int, int, int]:
        r = (await self._fetch(STATS, (tenant,)))[0]
        return (int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]))


def _session(r: Sequence[Any]) -> SessionRow:
    return SessionRow(
        r[0], r[1], r[2], float(r[3]), float(r[4]), r[5], bytes(r[6]), bytes(r[7]) if r[7] else None
    )
