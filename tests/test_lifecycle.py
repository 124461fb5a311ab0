"""Start, stop and restart: nothing acknowledged is lost, nothing is mined twice."""

import asyncio
from pathlib import Path

import pytest

from client import Interaction, KaizenClient, KaizenError
from schemas import LearningType, ScoredLearning
from server.core.errors import ConfigError
from server.db.database import Database
from server.runner import KaizenServer, ServerState
from tests.conftest import eventually, interaction, settings_for


async def test_a_graceful_stop_keeps_every_acknowledged_write(data_dir: Path) -> None:
    server = KaizenServer(settings_for(data_dir))
    await server.start()
    acked: list[int] = []

    async def writer(kz: KaizenClient, n: int) -> None:
        for i in range(50):
            try:
                acked.extend(
                    await kz.record_interactions([Interaction(**interaction(f"w{n} {i}"))])
                )
            except KaizenError:
                return

    async with KaizenClient(server.url) as kz:
        writers = [asyncio.create_task(writer(kz, n)) for n in range(8)]
        await eventually(lambda: _at_least(acked, 40))
        await server.stop()
        await asyncio.gather(*writers)
    assert server.state is ServerState.STOPPED
    await server.stop()

    again = KaizenServer(settings_for(data_dir))
    await again.start()
    try:
        async with KaizenClient(again.url) as kz:
            stored = {i.id for i in (await kz.list_interactions(limit=1000)).items}
            assert set(acked) <= stored
    finally:
        await again.stop()


async def _at_least(items: list[int], n: int) -> bool:
    return len(items) >= n


async def test_mining_resumes_after_a_restart_without_counting_twice(data_dir: Path) -> None:
    async def support(kz: KaizenClient, n: int) -> list[ScoredLearning]:
        found = await kz.get_relevant_learnings(type=LearningType.SUCCESS_PATTERN)
        return [x for x in found if x.support == n]

    first = KaizenServer(settings_for(data_dir))
    await first.start()
    async with KaizenClient(first.url) as kz:
        await kz.record_interactions([Interaction(**interaction()) for _ in range(3)])
        (before,) = await eventually(lambda: support(kz, 3))
    await first.stop()

    second = KaizenServer(settings_for(data_dir))
    await second.start()
    try:
        async with KaizenClient(second.url) as kz:
            await kz.record_interactions([Interaction(**interaction())])
            (after,) = await eventually(lambda: support(kz, 4))
            assert after.id == before.id
            assert after.evidence[-1] > before.evidence[-1]
            assert (await kz.stats()).extractor.folded == 1
    finally:
        await second.stop()


async def test_a_component_that_fails_to_start_stops_the_ones_started_before_it(
    data_dir: Path,
) -> None:
    """Tokens are checked after the store opened: refusing an open public address
    must close the store again, so the data dir is free for the next server."""
    refused = KaizenServer(settings_for(data_dir, host="0.0.0.0"))
    with pytest.raises(ConfigError, match="without tokens"):
        await refused.start()
    assert refused.state is ServerState.STOPPED
    db = Database(data_dir / "kaizen.sqlite3")  # takes the data dir's lock
    await db.open()
    await db.close()
    kaizen = KaizenServer(settings_for(data_dir))
    await kaizen.start()
    try:
        async with KaizenClient(kaizen.url) as kz:
            assert (await kz.health()).status == "ok"
    finally:
        await kaizen.stop()
