"""The embedded database: SQLite in WAL mode through aiosqlite.

One connection writes, through the group-committing `Writer`; a small pool of
read-only connections serves reads, which WAL lets run beside the writer. Each
capability's store reaches the database through `writer` and `fetch` only.
"""

import asyncio
import contextlib
import enum
import fcntl
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, Any, Literal

import aiosqlite

from schemas import WriterStats
from server.core.errors import ConfigError
from server.db.migrations import pending
from server.db.writer import Writer

SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
GET_META = "SELECT value FROM meta WHERE key = ?"

Fetch = Callable[[str, tuple[Any, ...]], Awaitable[list[sqlite3.Row]]]
"""`Database.fetch`, as each store receives it."""


class DatabaseState(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class Database:
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
    ) -> None:
        self.path = path
        self.state = DatabaseState.NEW
        self._synchronous = synchronous
        self._read_count = read_connections
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._commit_interval = commit_interval_s
        self._exclusive = exclusive
        self._lock: IO[bytes] | None = None
        self._conn: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._writer: Writer | None = None

    async def open(self) -> None:
        """Lock the data dir, migrate, start the writer. Not safe to cancel."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._exclusive:
            self._lock = _lock(self.path.with_suffix(".lock"))
        self._conn = await self._connect()
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute(f"PRAGMA synchronous={self._synchronous}")
        await self._migrate(self._conn)
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
        self.state = DatabaseState.OPEN

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
        self.state = DatabaseState.CLOSED

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
            raise RuntimeError("database is not open")
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

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    async def fetch(self, query: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        """Rows of one read, on a read-only connection. Safe to cancel."""
        async with self._reader() as conn:
            return list(await conn.execute_fetchall(query, params))


def _lock(path: Path) -> IO[bytes]:
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"another Kaizen server is using {path.parent}", path=str(path)) from None
    return handle
