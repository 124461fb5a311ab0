"""The embedded store: SQLite in WAL mode through aiosqlite.

One connection writes, through the group-committing `Writer`; a small pool of
read-only connections serves reads, which WAL lets run beside the writer.
"""

import asyncio
import contextlib
import fcntl
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any, Literal

import aiosqlite

from schemas import Interaction, StoredInteraction, WriterStats
from server.chat.store import SessionStore
from server.core.clock import Clock, SystemClock
from server.core.errors import ConfigError
from server.db import sql
from server.db.migrations import pending
from server.db.records import CommittedBatch, TenantCounts, TokenRecord
from server.db.writer import Built, Writer
from server.hub.store import HubStore
from server.kb.store import KnowledgeBaseStore
from server.learning.store import LearningStore
from server.strategy.store import StrategyStore
from server.training.store import JobStore
from server.workflows.store import WorkflowStore


class SqliteStore:
    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["OFF", "NORMAL", "FULL"] = "FULL",
        read_connections: int = 2,
        batch_max: int = 10_000,
        queue_max: int = 100_000,
        commit_interval_s: float = 0.0,
        exclusive: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.path = path
        self._synchronous = synchronous
        self._read_count = read_connections
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._commit_interval = commit_interval_s
        self._exclusive = exclusive
        self._clock = clock or SystemClock()
        self._lock: IO[bytes] | None = None
        self._conn: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._writer: Writer | None = None
        self._next_id = 1
        self._listeners: list[Callable[[CommittedBatch], None]] = []
        self.hub = HubStore(lambda: self.writer, self._fetch)
        self.learning = LearningStore(lambda: self.writer, self._fetch)
        self.strategy = StrategyStore(lambda: self.writer, self._fetch)
        self.workflows = WorkflowStore(lambda: self.writer, self._fetch)
        self.sessions = SessionStore(lambda: self.writer, self._fetch)
        self.jobs = JobStore(lambda: self.writer, self._fetch)
        self.kb = KnowledgeBaseStore(lambda: self.writer, self._fetch)

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Lock the data dir, migrate, start the writer. Not safe to cancel."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._exclusive:
            self._lock = _lock(self.path.with_suffix(".lock"))
        self._conn = await self._connect()
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute(f"PRAGMA synchronous={self._synchronous}")
        await self._migrate(self._conn)
        async with self._conn.execute("SELECT coalesce(max(id), 0) FROM interactions") as cur:
            row = await cur.fetchone()
        self._next_id = int(row[0]) + 1 if row else 1
        for _ in range(self._read_count):
            reader = await self._connect()
            await reader.execute("PRAGMA query_only=1")
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)
        self._writer = Writer(
            self._conn,
            batch_max=self._batch_max,
            queue_max=self._queue_max,
            commit_interval_s=self._commit_interval,
        )
        self._writer.start()
        await self.hub.open()
        await self.strategy.open()
        await self.workflows.open()
        await self.sessions.open()
        await self.jobs.open()
        await self.kb.open()

    async def drain(self) -> None:
        """Commit every queued write and stop the writer. Idempotent."""
        if self._writer is not None:
            await self._writer.drain()

    async def close(self) -> None:
        """Drain, then close every connection and release the lock. Idempotent."""
        await self.drain()
        for conn in [*self._all_readers, self._conn]:
            if conn is not None:
                await conn.close()
        self._all_readers.clear()
        self._conn = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        for number, script in pending(int(row[0]) if row else 0):
            await conn.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")

    @property
    def writer(self) -> Writer:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    def writer_stats(self) -> WriterStats:
        w = self._writer
        if w is None:
            return WriterStats(
                queue_depth=0, batches=0, writes=0, last_batch_size=0, last_commit_ms=0
            )
        return WriterStats(
            queue_depth=w.depth,
            batches=w.batches,
            writes=w.writes,
            last_batch_size=w.last_batch_size,
            last_commit_ms=w.last_commit_ms,
        )

    @property
    def last_interaction_id(self) -> int:
        return self._next_id - 1

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    async def _fetch(self, query: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        async with self._reader() as conn:
            return list(await conn.execute_fetchall(query, params))

    # -- writes --------------------------------------------------------------

    def on_commit(self, listener: Callable[[CommittedBatch], None]) -> None:
        """Call `listener` with every batch of interactions, right after its commit
        and in commit (so id) order. Listeners must be quick and must not raise."""
        self._listeners.append(listener)

    async def insert_interactions(self, tenant: str, items: list[Interaction]) -> list[int]:
        """Insert atomically. Ids are assigned once the write has a place in the
        queue, so they grow in commit order (the extractor's cursor relies on it).
        Cancelling leaves the insert's fate unknown."""
        bodies = [sql.interaction_body(item) for item in items]
        first = 0

        # annotated with an alias: a subscripted annotation would build its generic
        # aliases anew on every call (~0.6 µs, ~1.5% of the server's HTTP ingest CPU)
        def build() -> Built:
            nonlocal first
            first = self._next_id
            self._next_id += len(items)
            now = self._clock.now()
            rows = [
                sql.interaction_values(first + n, tenant, item, body, now)
                for n, (item, body) in enumerate(zip(items, bodies, strict=True))
            ]
            batch = CommittedBatch(tenant, first, now, items, bodies)
            return [(sql.INSERT_INTERACTIONS, rows)], lambda: self._notify(batch)

        await self.writer.submit_built(build)
        return list(range(first, first + len(items)))

    def _notify(self, batch: CommittedBatch) -> None:
        for listener in self._listeners:
            listener(batch)

    async def insert_token(self, record: TokenRecord, digest: bytes) -> None:
        values = (record.id, record.tenant, record.agent, digest, record.created_at)
        await self.writer.submit([(sql.INSERT_TOKEN, [values])])

    async def revoke_token(self, tenant: str, token_id: str, now: float) -> bool:
        found = await self._fetch(sql.TOKEN_ACTIVE_IN_TENANT, (tenant, token_id))
        if not found:
            return False
        await self.writer.submit([(sql.REVOKE_TOKEN, [(now, tenant, token_id)])])
        return True

    # -- reads ---------------------------------------------------------------

    async def get_interaction(self, tenant: str, interaction_id: int) -> StoredInteraction | None:
        rows = await self._fetch(sql.GET_INTERACTION, (tenant, interaction_id))
        return sql.stored_interaction(rows[0]) if rows else None

    async def list_interactions(
        self, tenant: str, after_id: int, limit: int
    ) -> list[StoredInteraction]:
        rows = await self._fetch(sql.LIST_INTERACTIONS, (tenant, after_id, limit))
        return [sql.stored_interaction(r) for r in rows]

    async def successful_interactions(
        self, tenant: str, since: float, limit: int
    ) -> list[StoredInteraction]:
        """The tenant's successful interactions recorded since `since`, newest first."""
        rows = await self._fetch(sql.SUCCESSFUL_SINCE, (tenant, since, limit))
        return [sql.stored_interaction(r) for r in rows]

    async def committed_after(self, after_id: int, limit: int) -> list[CommittedBatch]:
        rows = await self._fetch(sql.COMMITTED_AFTER, (after_id, limit))
        return sql.committed_batches(rows)

    async def find_token(self, digest: bytes) -> TokenRecord | None:
        rows = await self._fetch(sql.FIND_TOKEN, (digest,))
        return TokenRecord(*rows[0]) if rows else None

    async def list_tokens(self, tenant: str, after_id: str, limit: int) -> list[TokenRecord]:
        rows = await self._fetch(sql.LIST_TOKENS, (tenant, after_id, limit))
        return [TokenRecord(*r) for r in rows]

    async def active_token_count(self) -> int:
        rows = await self._fetch(sql.COUNT_ACTIVE_TOKENS, ())
        return int(rows[0][0])

    async def counts(self, tenant: str) -> TenantCounts:
        rows = await self._fetch(sql.COUNTS, (tenant, tenant))
        return TenantCounts(int(rows[0][0]), int(rows[0][1]))


def _lock(path: Path) -> IO[bytes]:
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"another Kaizen server is using {path.parent}", path=str(path)) from None
    return handle
