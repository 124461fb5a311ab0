"""The miner in a process of its own (`miner_process`, the server's default): the
same learnings and strategy reads as in a thread, and recovery when it dies."""

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from client import Interaction, KaizenClient, LearningType
from schemas import ScoredLearning
from schemas.strategy import TaskAnalysis
from schemas.system import Stats
from server.core.stats import wilson_lower_bound
from server.learning.committed import CommittedBatch, interaction_body
from server.learning.miner import MinerParams
from server.learning.miner_host import MinerFailed, ProcessMinerHost
from server.learning.miner_worker import WireBatch, from_wire, to_wire
from server.runner import KaizenServer
from tests.conftest import eventually, interaction, running


@pytest.fixture
async def proc_server(data_dir: Path) -> AsyncIterator[KaizenServer]:
    async with running(data_dir, miner_process=True) as server:
        yield server


@pytest.fixture
async def pkz(proc_server: KaizenServer) -> AsyncIterator[KaizenClient]:
    async with KaizenClient(proc_server.url) as kz:
        yield kz


async def record(kz: KaizenClient, n: int, task: str, **fields: object) -> list[int]:
    return await kz.record_interactions([Interaction(**interaction(task, **fields))] * n)


async def supported(kz: KaizenClient, support: int) -> list[ScoredLearning] | None:
    found = await kz.get_learnings_by_type(LearningType.SUCCESS_PATTERN)
    return [x for x in found if x.support == support] or None


async def test_the_miner_runs_in_another_process(pkz: KaizenClient) -> None:
    stats: Stats = await pkz.stats()
    pid = stats.extractor.miner_pid
    assert pid is not None and pid != os.getpid()
    os.kill(pid, 0)  # alive


async def test_interactions_become_learnings_through_the_process(pkz: KaizenClient) -> None:
    ids = await record(pkz, 4, "Create Python function")
    ids += await record(pkz, 1, "Create Python function", success=False)
    (learning,) = await eventually(lambda: supported(pkz, 5))
    assert (learning.successes, learning.evidence) == (4, ids[:4])
    assert learning.confidence == wilson_lower_bound(4, 5)


async def test_strategy_reads_the_miner_in_its_process(pkz: KaizenClient) -> None:
    for n in range(6):
        await pkz.record_interactions(
            [Interaction(**interaction("Fix the failing login test", agent_type="debug"))]
        )
        await pkz.record_interactions(
            [
                Interaction(
                    **interaction("Fix the failing login test", agent_type="code", success=n == 0)
                )
            ]
        )

    async def placed() -> TaskAnalysis | None:
        found = await pkz.analyze_task("Fix the failing login test")
        return found if found.cluster_id is not None else None

    analysis = await eventually(placed)
    assert analysis.suggested_agents[0].agent_type == "debug"


async def test_a_killed_miner_is_restarted_and_loses_nothing(pkz: KaizenClient) -> None:
    await record(pkz, 3, "Create Python function")
    await eventually(lambda: supported(pkz, 3))
    first = (await pkz.stats()).extractor.miner_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await record(pkz, 2, "Create Python function")
    (learning,) = await eventually(lambda: supported(pkz, 5), timeout=30)
    assert learning.successes == 5
    second = (await pkz.stats()).extractor.miner_pid
    assert second is not None and second != first


async def test_a_closed_host_refuses_calls_and_closes_twice() -> None:
    from server.core.window import Window
    from server.learning.claims import ClaimRules

    host = ProcessMinerHost(MinerParams(claims=ClaimRules(window=Window())))
    await host.close()
    await host.close()
    with pytest.raises(MinerFailed):
        await host.unknown({("t", "task")})


def test_a_batch_travels_as_its_stored_bodies() -> None:
    from schemas import Interaction as Model

    items = [Model(**interaction(f"task {n}", timestamp="2026-01-02T03:04:05Z")) for n in range(3)]
    batch = CommittedBatch("t", 7, 1000.0, items, [interaction_body(i) for i in items])
    rebuilt = from_wire(to_wire(batch))
    assert (rebuilt.tenant, rebuilt.first_id, rebuilt.recorded_at) == ("t", 7, 1000.0)
    assert [i.model_dump() for i in rebuilt.items] == [
        {**i.model_dump(), "id": 7 + n, "recorded_at": rebuilt.items[n].recorded_at}  # type: ignore[attr-defined]
        for n, i in enumerate(items)
    ]


def test_a_batch_without_bodies_cannot_travel() -> None:
    from schemas import Interaction as Model

    batch = CommittedBatch("t", 1, 0.0, [Model(**interaction("task"))])
    with pytest.raises(ValueError, match="stored body"):
        to_wire(batch)
    assert WireBatch("t", 1, 0.0, []).bodies == []


async def test_a_backlog_past_its_bound_is_read_back_from_the_store(data_dir: Path) -> None:
    async with (
        running(data_dir, miner_process=True, extractor_backlog_max=10) as server,
        KaizenClient(server.url) as kz,
    ):
        ids = await record(kz, 50, "Create Python function")  # 50 > 10: dropped, re-read
        ids += await record(kz, 1, "Create Python function", success=False)
        (learning,) = await eventually(lambda: supported(kz, 51))
        assert (learning.successes, learning.evidence) == (50, ids[30:50])  # the latest 20
        stats = (await kz.stats()).extractor
        assert (stats.behind, stats.backlog, stats.cursor) == (False, 0, ids[-1])


async def test_the_store_reads_writes_back_whole_with_their_tasks(tmp_path: Path) -> None:
    from schemas import Interaction as Model
    from server.db.database import Database
    from server.stores import Stores

    store = Stores(Database(tmp_path / "kaizen.sqlite3"))
    await store.open()
    try:
        writes = [("a", ["x", "y", "z"]), ("b", ["w"]), ("a", ["v", "u"]), ("a", ["n\x00ul"])]
        for tenant, tasks in writes:
            await store.interactions.insert(tenant, [Model(**interaction(t)) for t in tasks])
        batches = await store.interactions.committed_after(1, 100)
        stored = [
            await store.interactions.get(b.tenant, b.first_id + n)
            for b in batches
            for n in range(len(b.items))
        ]
    finally:
        await store.close()
    assert [(b.tenant, b.first_id, list(b.tasks)) for b in batches] == [
        ("a", 2, ["y", "z"]),
        ("b", 4, ["w"]),
        ("a", 5, ["v", "u"]),
        ("a", 7, []),
    ]
    assert batches[3].task_descriptions() == ["n\x00ul"]  # json_extract would cut it
    assert [i for b in batches for i in b.items] == stored
    assert batches[0].items[-1] == stored[1] and batches[0].items[:1] == stored[:1]
    assert from_wire(to_wire(batches[2])).items == list(batches[2].items)


async def test_a_backlog_longer_than_one_read_back_is_folded_whole(data_dir: Path) -> None:
    from server.learning.extractor import BEHIND_READ

    writes = 2  # the first takes the extractor behind; the second is read back in 3 reads
    per_write = BEHIND_READ * 5 // 2
    async with (
        running(data_dir, extractor_backlog_max=10) as server,
        KaizenClient(server.url) as kz,
    ):
        ids = [
            i for _ in range(writes) for i in await record(kz, per_write, "Create Python function")
        ]
        (learning,) = await eventually(lambda: supported(kz, writes * per_write))
        assert learning.successes == len(ids) == writes * per_write
        stats = (await kz.stats()).extractor
        assert (stats.behind, stats.backlog, stats.cursor) == (False, 0, ids[-1])
