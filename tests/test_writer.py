"""The group-committing writer, on a real SQLite file."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.db.writer import WriteOp, Writer, merge

SQL = st.sampled_from(["A", "B", "C"])


@given(
    st.lists(
        st.lists(st.tuples(SQL, st.lists(st.integers(), min_size=1, max_size=3)), max_size=4),
        max_size=6,
    )
)
def test_merge_keeps_every_row_in_order(ops: list[list[tuple[str, list[int]]]]) -> None:
    loop = asyncio.new_event_loop()
    try:
        batch = [
            WriteOp(
                [(sql, [(v,) for v in rows]) for sql, rows in op], None, loop.create_future(), 0
            )
            for op in ops
        ]
    finally:
        loop.close()
    flat = [(sql, r) for op in ops for sql, rows in op for r in rows]
    merged = [(sql, r[0]) for sql, rows in merge(batch) for r in rows]
    assert merged == flat
    assert all(a[0] != b[0] for a, b in zip(merge(batch), merge(batch)[1:], strict=False))


@pytest.fixture
async def writer(tmp_path: Path):  # type: ignore[no-untyped-def]
    conn = await aiosqlite.connect(tmp_path / "w.db", isolation_level=None)
    await conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    w = Writer(conn, batch_max=1000, queue_max=1000)
    w.start()
    yield w, conn
    await w.drain()
    await conn.close()


async def test_concurrent_writes_share_commits(writer) -> None:  # type: ignore[no-untyped-def]
    w, conn = writer
    await asyncio.gather(*(w.submit([("INSERT INTO t VALUES (?)", [(i,)])]) for i in range(200)))
    async with conn.execute("SELECT count(*) FROM t") as cur:
        assert (await cur.fetchone())[0] == 200
    assert w.batches < 200


async def test_a_failing_write_does_not_sink_its_neighbours(writer) -> None:  # type: ignore[no-untyped-def]
    w, conn = writer
    good = [w.submit([("INSERT INTO t VALUES (?)", [(i,)])]) for i in (1, 2)]
    bad = w.submit([("INSERT INTO t VALUES (?)", [(3,), (1,)])])
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert results[:2] == [None, None]
    assert isinstance(results[2], Exception)
    async with conn.execute("SELECT v FROM t ORDER BY v") as cur:
        assert [r[0] for r in await cur.fetchall()] == [1, 2]


async def test_drain_is_idempotent_and_refuses_later_writes(writer) -> None:  # type: ignore[no-untyped-def]
    w, _ = writer
    await w.drain()
    await w.drain()
    with pytest.raises(Exception, match="shutting down"):
        await w.submit([("INSERT INTO t VALUES (?)", [(9,)])])


@contextlib.asynccontextmanager
async def paced_writer(
    tmp_path: Path, interval: float, batch_max: int = 1000
) -> AsyncIterator[Writer]:
    conn = await aiosqlite.connect(tmp_path / "paced.db", isolation_level=None)
    await conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    w = Writer(conn, batch_max=batch_max, queue_max=1000, commit_interval_s=interval)
    w.start()
    try:
        yield w
    finally:
        await w.drain()
        await conn.close()


def insert(w: Writer, v: int) -> "asyncio.Task[None]":
    return asyncio.ensure_future(w.submit([("INSERT INTO t VALUES (?)", [(v,)])]))


async def test_writes_soon_after_a_commit_wait_to_share_the_next(tmp_path: Path) -> None:
    async with paced_writer(tmp_path, interval=0.5) as w:
        await asyncio.gather(insert(w, 1), insert(w, 2))  # two writers at once: contention
        third = insert(w, 3)
        await asyncio.sleep(0.05)  # unpaced, the third write would commit alone by now
        fourth = insert(w, 4)
        await asyncio.gather(third, fourth)
        assert (w.batches, w.last_batch_size) == (2, 2)


async def test_a_write_to_an_idle_writer_does_not_wait_for_the_interval(tmp_path: Path) -> None:
    async with paced_writer(tmp_path, interval=3600.0) as w:
        await asyncio.wait_for(insert(w, 1), timeout=30)
        assert w.batches == 1


async def test_a_full_batch_does_not_wait_for_the_interval(tmp_path: Path) -> None:
    async with paced_writer(tmp_path, interval=3600.0, batch_max=2) as w:
        await asyncio.gather(insert(w, 1), insert(w, 2))  # contention: the next is paced
        await asyncio.wait_for(asyncio.gather(insert(w, 3), insert(w, 4)), timeout=30)
        assert w.batches == 2


async def test_a_writer_fed_one_write_at_a_time_is_never_paced(tmp_path: Path) -> None:
    async with paced_writer(tmp_path, interval=3600.0) as w:
        for v in range(3):  # each waits for its commit before the next is written
            await asyncio.wait_for(insert(w, v), timeout=30)
        assert w.batches == 3
