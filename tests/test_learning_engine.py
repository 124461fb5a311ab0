"""The learning engine against a real server: retrieval by meaning, the lexical
fallback, the window and decay on an injected clock, anomalies and their alerts."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from client import KaizenClient, LearningType, NotFoundError
from schemas import LearningStatus
from server.core.clock import ManualClock, utc
from server.core.window import DAY
from server.runner import KaizenServer
from tests.conftest import eventually, interaction, settings_for
from tests.hubkit import raw_peer

CSV_TASK = "Write unit tests for the CSV parser"
CSV_PARAPHRASE = "Add tests covering the csv reader module"
STEPS = [{"type": "WRITE_TESTS"}, {"type": "RUN_PYTEST"}]


@contextlib.asynccontextmanager
async def kaizen(
    data_dir: Path, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[KaizenClient]:
    server = KaizenServer(settings_for(data_dir, **overrides), clock)
    await server.start()
    try:
        async with KaizenClient(server.url) as kz:
            yield kz
    finally:
        await server.stop()


async def record(kz: KaizenClient, n: int, task: str = CSV_TASK, **fields: Any) -> None:
    for _ in range(n):
        await kz.record_interaction(**interaction(task, actions_taken=STEPS, **fields))


async def success_patterns(kz: KaizenClient, task: str | None = None) -> list[Any]:
    return await kz.get_relevant_learnings(task, type=LearningType.SUCCESS_PATTERN)


async def test_a_paraphrase_retrieves_the_same_learning(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        await record(kz, 3)
        (learned,) = await eventually(lambda: success_patterns(kz))
        (found,) = await success_patterns(kz, CSV_PARAPHRASE)
        assert found.id == learned.id
        assert found.why.similarity_kind == "embedding" and found.why.similarity > 0.5
        assert found.why.matched_task == CSV_TASK
        assert (await kz.get_statistics()).learning.retrieval == "semantic+lexical"


async def test_paraphrases_of_a_task_share_its_cluster(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        for task in (CSV_TASK, CSV_PARAPHRASE, "Create tests for the CSV parsing code"):
            await record(kz, 1, task)
        (learned,) = await eventually(lambda: success_patterns(kz))
        assert learned.support == 3


async def test_unrelated_tasks_do_not_match(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        await record(kz, 3)
        await eventually(lambda: success_patterns(kz))
        assert await success_patterns(kz, "Renew the TLS certificate of the mail server") == []


async def test_without_the_ml_extra_ranking_is_lexical(data_dir: Path) -> None:
    async with kaizen(data_dir, embedding_model="none") as kz:
        await record(kz, 3)
        (learned,) = await eventually(lambda: success_patterns(kz))
        (found,) = await success_patterns(kz, "unit tests for a CSV module")
        assert found.id == learned.id and found.why.similarity_kind == "terms"
        assert {"csv", "unit"} <= set(found.why.matched_terms)
        stats = await kz.get_statistics()
        assert stats.learning.retrieval == "lexical" and stats.learning.embedding_model is None


async def test_exact_terms_count_through_bm25(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        steps = [{"type": "RUN_TESTS"}, {"type": "INSTALL_PACKAGE"}, {"type": "RUN_TESTS"}]
        results = [{"success": False, "error": "ModuleNotFoundError: pandas"}, {}, {}]
        for _ in range(3):
            await kz.record_interaction(
                **interaction("Run the data pipeline", actions_taken=steps, results=results)
            )
        kind = LearningType.ERROR_RECOVERY
        (recovery,) = await eventually(lambda: kz.get_learnings_by_type(kind))
        assert recovery.trigger is not None and recovery.trigger.error == "ModuleNotFoundError"
        found = await kz.get_relevant_learnings("pipeline hits ModuleNotFoundError", type=kind)
        assert [f.id for f in found] == [recovery.id] and found[0].why.lexical == 1.0


async def test_learnings_age_out_of_the_window_on_the_clock(data_dir: Path) -> None:
    clock = ManualClock()
    async with kaizen(data_dir, clock, sweep_interval_s=0.05) as kz:
        await record(kz, 5)
        (fresh,) = await eventually(lambda: success_patterns(kz))
        clock.advance(7 * DAY)

        async def decayed() -> list[Any]:
            return [x for x in await success_patterns(kz) if x.confidence < fresh.confidence]

        (week_old,) = await eventually(decayed)
        assert week_old.why.recency < 1.0
        clock.advance(30 * DAY)

        async def retired() -> bool:
            return await success_patterns(kz) == []

        await eventually(retired)
        assert (await kz.get_learning(fresh.id)).status is LearningStatus.RETIRED


async def test_since_and_confidence_filters(data_dir: Path) -> None:
    clock = ManualClock()
    async with kaizen(data_dir, clock) as kz:
        await record(kz, 3)
        await eventually(lambda: success_patterns(kz))
        later = clock.now() + DAY
        assert await kz.get_relevant_learnings(CSV_TASK, since=utc(later)) == []
        assert await kz.get_high_confidence_learnings() == []
        await record(kz, 10)

        async def high() -> list[Any]:
            return await kz.get_high_confidence_learnings()

        assert all(x.confidence_level in ("HIGH", "VERY_HIGH") for x in await eventually(high))


async def test_anomalies_alert_then_fade_as_behaviour_becomes_normal(data_dir: Path) -> None:
    async with kaizen(data_dir, anomaly_min_history=5) as kz:
        await record(kz, 8)
        novel = [{"type": "DOCKER_BUILD"}, {"type": "RUN_PYTEST"}]
        async with kz.subscribe("warnings") as alerts:
            await kz.record_interaction(**interaction(CSV_TASK, actions_taken=novel))
            push = await alerts.get()
        assert push.data.knowledge_type == "WARNING" and "anomaly" in push.data.tags
        (anomaly,) = (await kz.anomalies()).items
        assert anomaly.agent_type == "code" and anomaly.score >= 0.8
        assert [r.kind for r in anomaly.reasons][:1] == ["novel_action"]
        for _ in range(12):
            await kz.record_interaction(**interaction(CSV_TASK, actions_taken=novel))

        async def settled() -> bool:
            return (await kz.get_statistics()).extractor.backlog == 0

        await eventually(settled)
        assert [a.id for a in (await kz.anomalies()).items][-1:] == [anomaly.id]
        assert len((await kz.anomalies()).items) < 4


async def test_anomalies_filter_and_page(data_dir: Path) -> None:
    async with kaizen(data_dir, anomaly_min_history=3) as kz:
        await record(kz, 5)
        for n in range(3):
            steps = [{"type": f"NEW_TOOL_{n}"}]
            await kz.record_interaction(**interaction(CSV_TASK, actions_taken=steps))

        async def three() -> bool:
            return len((await kz.anomalies()).items) == 3

        await eventually(three)
        first = await kz.anomalies(limit=2)
        second = await kz.anomalies(limit=2, cursor=first.next_cursor)
        assert [a.id for a in first.items + second.items] == [3, 2, 1]
        assert (await kz.anomalies(agent_type="test")).items == []


async def test_learning_ops_over_the_websocket(data_dir: Path) -> None:
    async with kaizen(data_dir) as kz:
        await record(kz, 3)
        (learned,) = await eventually(lambda: success_patterns(kz))
        async with raw_peer(kz.base_url) as peer:
            got = await peer.call("get_learning", learning_id=learned.id)
            assert got["data"]["id"] == learned.id
            anomalies = await peer.call("anomalies", query={"min_score": 0.5})
            assert anomalies["data"]["items"] == []
            stats = await peer.call("stats")
            assert stats["data"]["learning"]["retrieval"] == "semantic+lexical"
            missing = await peer.call("get_learning", learning_id=10**9)
            assert missing["type"] == "error" and missing["error"]["code"] == "not_found"
            bad = await peer.call("anomalies", query={"min_score": 2})
            assert bad["error"]["code"] == "invalid_request"
            assert (await peer.call("ping"))["op"] == "ping"


@pytest.mark.parametrize(
    "query",
    [
        {"min_score": "2"},
        {"min_score": "high"},
        {"limit": "0"},
        {"limit": "5000"},
        {"since": "yesterday"},
        {"agent_type": "has space"},
        {"cursor": "garbage"},
        {"unknown": "1"},
    ],
)
async def test_bad_anomaly_queries_are_422(kz: KaizenClient, query: dict[str, str]) -> None:
    async with kz.http.get("/anomalies", params=query) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "query",
    [{"since": "not a date"}, {"type": "GUESS"}, {"min_confidence": "SURE"}, {"task": ""}],
)
async def test_bad_learning_queries_are_422(kz: KaizenClient, query: dict[str, str]) -> None:
    async with kz.http.get("/learnings", params=query) as resp:
        assert resp.status == 422


async def test_another_tenants_learnings_and_anomalies_stay_hidden(
    tenants: tuple[Any, str, str],
) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        await record(a, 3)
        (learned,) = await eventually(lambda: success_patterns(a))
        assert await success_patterns(b, CSV_TASK) == []
        with pytest.raises(NotFoundError):
            await b.get_learning(learned.id)
        assert (await b.anomalies()).items == []
