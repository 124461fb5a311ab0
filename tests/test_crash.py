"""A server killed with SIGKILL mid-ingest keeps every interaction it acknowledged."""

import asyncio
from pathlib import Path

from client import Interaction, KaizenClient, KaizenError, LearningType
from tests.conftest import eventually, interaction
from tests.procs import ServerProcess


async def ingest(url: str, worker: int, acked: dict[int, str], stop: asyncio.Event) -> None:
    async with KaizenClient(url, timeout=5) as kz:
        n = 0
        while not stop.is_set():
            tasks = [f"Create Python function w{worker} n{n + i}" for i in range(10)]
            n += 10
            try:
                ids = await kz.record_interactions([Interaction(**interaction(t)) for t in tasks])
            except KaizenError:
                return
            acked.update(zip(ids, tasks, strict=True))


async def all_interactions(kz: KaizenClient) -> dict[int, str]:
    found: dict[int, str] = {}
    cursor = None
    while True:
        page = await kz.list_interactions(limit=1000, cursor=cursor)
        found.update((i.id, i.task_description) for i in page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def test_sigkill_mid_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = ServerProcess(data_dir)
    url = await first.start()
    acked: dict[int, str] = {}
    stop = asyncio.Event()
    workers = [asyncio.create_task(ingest(url, w, acked, stop)) for w in range(8)]
    await eventually(lambda: _at_least(acked, 500))
    await first.kill()
    stop.set()
    await asyncio.gather(*workers)

    second = ServerProcess(data_dir)
    url = await second.start()
    try:
        async with KaizenClient(url) as kz:
            stored = await all_interactions(kz)
            assert len(acked) >= 500
            assert {i: stored.get(i) for i in acked} == acked
            await eventually(lambda: _folded(kz, max(stored)))
            learned = await kz.get_learnings_by_type(LearningType.SUCCESS_PATTERN, limit=100)
            assert round(sum(x.support for x in learned)) == len(stored)
    finally:
        assert await second.terminate() == 0


async def _at_least(acked: dict[int, str], n: int) -> bool:
    return len(acked) >= n


async def _folded(kz: KaizenClient, last_id: int) -> bool:
    return (await kz.stats()).extractor.cursor >= last_id
