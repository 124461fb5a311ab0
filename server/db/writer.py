"""The one writer: every write is queued, and queued writes are group-committed.

A `WriteOp` is a list of (sql, rows) steps. The writer takes everything queued
(up to `batch_max` rows), merges adjacent steps that share their SQL, runs the
lot in one transaction (an `Insert` as multi-row VALUES chunks, other SQL with
`executemany`), and resolves each op's future only after COMMIT returns: an
acknowledged write is durable. If the group fails with an error one op can cause,
each op is retried alone, so one bad op cannot sink its neighbours.

Commits are paced: under contention one starts at most every `commit_interval_s`.
A commit costs about the same whatever it holds (SQLite writes its WAL pages and,
at synchronous=FULL, fsyncs), so under a steady stream of small writes (hub
publishes, one per frame) committing each on its own cost ~130 µs of CPU a write
against ~17 µs in groups of 32. A write that finds the writer idle and the last
commit older than the interval, or behind a commit of one write with nothing
queued behind it, is committed at once, so sparse traffic and one-at-a-time
callers wait for nothing; under contention a write waits at most one interval for
the commit that takes it. This is PostgreSQL's `commit_delay` (with
`commit_siblings`) and Kafka's producer `linger.ms` (5 ms by default since 4.0).
"""

import asyncio
import contextlib
import enum
import functools
import itertools
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from server.core.errors import Unavailable

log = logging.getLogger("kaizen.store.writer")

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Insert:
    """An INSERT run as multi-row `VALUES (…), (…)` statements of up to `CHUNK`
    rows. `executemany` steps SQLite once per row, and each step releases the GIL
    and must take it back behind the busy event loop: under load that stretched a
    20-row group commit from under 1 ms to 5 to 25 ms (bench/ingest.py). One step per
    chunk keeps the GIL round trips per commit constant."""

    head: str
    """`INSERT INTO table (columns) VALUES`"""
    width: int

    def sql(self, rows: int) -> str:
        return _values_sql(self.head, self.width, rows)


CHUNK = 100
Step = tuple[str | Insert, Sequence[Row]]
Built = tuple[list[Step], Callable[[], None] | None]
"""What `Writer.submit_built`'s `build` returns: the steps, and the commit hook."""


@dataclass(slots=True)
class WriteOp:
    steps: list[Step]
    on_commit: Callable[[], None] | None
    future: asyncio.Future[None]
    size: int
    """Rows across the steps."""


class _Room:
    """Places in the write queue, handed out first come, first served.

    An `asyncio.Semaphore` does the same, but every acquire and release runs a few
    Python calls (its `locked()` scans the waiters); this is one per request on the
    ingest path, so a free place is taken here without awaiting anything."""

    def __init__(self, places: int) -> None:
        self._free = places
        self._waiters: deque[asyncio.Future[None]] = deque()

    def free(self) -> bool:
        """Whether `try_take` would take a place now."""
        return self._free > 0 and not self._waiters

    def try_take(self) -> bool:
        """Take a place now if one is free and nobody queues for one (FIFO)."""
        if self.free():
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a place, behind whoever waits already."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved by `give_back`, which counted the place as taken
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif not waiter.cancelled():
                self.give_back(1)  # a place was handed over as we left: pass it on
            raise

    def give_back(self, places: int) -> None:
        self._free += places
        while self._free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._free -= 1
                waiter.set_result(None)


class WriterState(enum.Enum):
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"


class Writer:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        batch_max: int,
        queue_max: int,
        commit_interval_s: float = 0.0,
    ) -> None:
        self._conn = conn
        self._batch_max = batch_max
        self._commit_interval = commit_interval_s
        self._last_commit = -commit_interval_s
        self._contended = False
        """Whether the last commit held several writes or more queued while it ran:
        only then is the next paced."""
        self._queued_rows = 0
        # A deque with a wake-up future, not an asyncio.Queue: put, get and
        # task_done are Python calls per op, on the ingest path.
        self._queue: deque[WriteOp] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._idle = asyncio.Event()
        """Set while nothing is queued or committing: what `drain` waits for."""
        self._idle.set()
        self._room = _Room(queue_max)
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self.state = WriterState.RUNNING
        self.batches = 0
        self.writes = 0
        self.last_batch_size = 0
        self.last_commit_ms = 0.0

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kaizen-writer")

    async def submit(self, steps: list[Step], on_commit: Callable[[], None] | None = None) -> None:
        """Queue a write and wait for its commit. See `submit_built`."""
        await self.submit_built(lambda: (steps, on_commit))

    async def submit_built(self, build: Callable[[], Built]) -> None:
        """Wait for room in the queue (FIFO), then call `build` and queue what it
        returns with no await in between, so whatever `build` numbers (ids) is
        numbered in queue order, which is commit order. `on_commit` runs right after
        the commit, in commit order, on the event loop: keep it short. Cancelling is
        safe for the caller, but the write may still commit: its fate is unknown."""
        if self.state is not WriterState.RUNNING:
            raise Unavailable("the server is shutting down")
        if not self._room.try_take():
            await self._room.take()
        await self._enqueue(build)

    def has_room(self) -> bool:
        """Whether `submit_soon` can queue a write now."""
        return self.state is WriterState.RUNNING and self._room.free()

    def submit_soon(self, build: Callable[[], Built]) -> asyncio.Future[None]:
        """`submit_built` without waiting: queue the write now and return the future
        its commit resolves (after `on_commit` ran). Raises Unavailable unless
        `has_room()`. Cancelling the future does not withdraw the write."""
        if self.state is not WriterState.RUNNING or not self._room.try_take():
            raise Unavailable("the write queue is full or the server is shutting down")
        return self._enqueue(build)

    def _enqueue(self, build: Callable[[], Built]) -> asyncio.Future[None]:
        """Queue what `build` returns; the caller holds a place, given back here if
        `build` raises."""
        try:
            steps, on_commit = build()
        except BaseException:
            self._room.give_back(1)
            raise
        size = sum([len(rows) for _, rows in steps])
        op = WriteOp(steps, on_commit, self._loop.create_future(), size)
        self._queue.append(op)
        self._queued_rows += size
        self._idle.clear()
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        return op.future

    async def drain(self) -> None:
        """Commit everything queued, then stop. Idempotent; cancelling it abandons the drain."""
        if self.state is WriterState.CLOSED:
            return
        self.state = WriterState.DRAINING
        await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.state = WriterState.CLOSED

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake = self._loop.create_future()
                await self._wake
                continue
            await self._pace()
            batch = self._take()
            self._room.give_back(len(batch))
            await self._commit_group(batch)
            # a caller that waits for each commit before its next write makes
            # commits of one op with nothing queued behind them: never paced
            self._contended = len(batch) > 1 or bool(self._queue)

    async def _pace(self) -> None:
        """Under contention (the last commit held several writes, or more queued
        while it ran), wait until `commit_interval_s` after the last commit began,
        unless a whole batch is queued already or the writer drains. A writer fed
        one write at a time (each caller waits for its commit before the next) is
        never paced. Cancelling stops the writer (`drain`)."""
        delay = self._last_commit + self._commit_interval - self._loop.time()
        if (
            delay > 0
            and self._contended
            and self._queued_rows < self._batch_max
            and self.state is WriterState.RUNNING
        ):
            await asyncio.sleep(delay)
        self._last_commit = self._loop.time()

    def _take(self) -> list[WriteOp]:
        """The oldest queued ops, up to `batch_max` rows (always at least one op)."""
        first = self._queue.popleft()
        batch, size = [first], first.size
        while size < self._batch_max and self._queue:
            op = self._queue.popleft()
            batch.append(op)
            size += op.size
        self._queued_rows -= size
        return batch

    async def _commit_group(self, batch: list[WriteOp]) -> None:
        started = time.perf_counter()
        try:
            await self._transaction(merge(batch))
        except OP_ERRORS:
            log.warning(
                "group commit of %d ops failed; retrying one by one", len(batch), exc_info=True
            )
            await self._commit_alone(batch)
            return
        except Exception as exc:
            log.error("group commit of %d ops failed", len(batch), exc_info=True)
            for op in batch:
                if not op.future.done():
                    op.future.set_exception(exc)
            return
        self._account(batch, started)
        for op in batch:
            _committed(op)

    async def _commit_alone(self, batch: list[WriteOp]) -> None:
        for op in batch:
            try:
                await self._transaction(op.steps)
            except Exception as exc:
                if not op.future.done():
                    op.future.set_exception(exc)
            else:
                _committed(op)

    async def _transaction(self, steps: list[Step]) -> None:
        """Run BEGIN … COMMIT as one call on aiosqlite's connection thread. Its
        public calls cost a round trip to the event loop each (BEGIN, every step,
        COMMIT), and under load each trip waits behind request work: one trip per
        group commit cut the commit cycle about threefold (bench/ingest.py).
        `_execute` is aiosqlite's own queueing primitive (stable since 0.17)."""
        await self._conn._execute(_transaction_sync, self._conn._conn, steps)  # type: ignore[no-untyped-call]

    def _account(self, batch: list[WriteOp], started: float) -> None:
        self.batches += 1
        self.last_batch_size = sum(op.size for op in batch)
        self.writes += self.last_batch_size
        self.last_commit_ms = (time.perf_counter() - started) * 1000


@functools.lru_cache(maxsize=256)
def _values_sql(head: str, width: int, rows: int) -> str:
    group = "(" + ", ".join("?" * width) + ")"
    return f"{head} {', '.join([group] * rows)}"


OP_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, OverflowError)
"""Errors one op can cause. Only these are worth retrying op by op; others (a
locked or full database) would fail every retry too, each after the busy timeout."""


def _transaction_sync(conn: sqlite3.Connection, steps: list[Step]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in steps:
            if isinstance(sql, Insert):
                for start in range(0, len(rows), CHUNK):
                    _insert(conn, sql, rows[start : start + CHUNK])
            else:
                conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already
            conn.execute("ROLLBACK")
        raise


def _insert(conn: sqlite3.Connection, insert: Insert, rows: Sequence[Row]) -> None:
    """Rows as one multi-row VALUES statement (at most CHUNK of them)."""
    # chain, not a nested comprehension: this thread holds the GIL here
    conn.execute(insert.sql(len(rows)), list(itertools.chain.from_iterable(rows)))


def _committed(op: WriteOp) -> None:
    if op.on_commit is not None:
        try:
            op.on_commit()
        except Exception:
            log.exception("commit hook failed")
    if not op.future.done():
        op.future.set_result(None)


def merge(batch: list[WriteOp]) -> list[Step]:
    """Concatenate the ops' steps, merging adjacent steps that share their SQL.
    Every op's own step order, and the order between ops, is kept."""
    steps: list[tuple[str | Insert, list[Row]]] = []
    for op in batch:
        for sql, rows in op.steps:
            # `is` first: steps are usually the same Insert object, and its
            # dataclass `==` is a Python call
            if steps and (steps[-1][0] is sql or steps[-1][0] == sql):
                steps[-1][1].extend(rows)
            else:
                steps.append((sql, list(rows)))
    return [(sql, rows) for sql, rows in steps]
