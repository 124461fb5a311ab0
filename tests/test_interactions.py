"""Recording interactions over HTTP with the SDK, and reading them back."""

from typing import Any

from client import Interaction, KaizenClient, SyncKaizenClient
from server.runner import KaizenServer
from tests.conftest import interaction


async def test_record_one_returns_its_stored_id(kz: KaizenClient) -> None:
    new_id = await kz.record_interaction(
        **interaction(metadata={"agent_id": "c-1"}, session_id="s1")
    )
    stored = await kz.get_interaction(new_id)
    assert stored.task_description == "Create Python function"
    assert stored.actions_taken[0] == {"type": "CREATE_FILE", "path": "f.py"}
    assert (stored.metadata, stored.session_id, stored.iterations) == ({"agent_id": "c-1"}, "s1", 2)


async def test_a_batch_is_stored_in_order(kz: KaizenClient) -> None:
    items = [Interaction(**interaction(f"task number {i}")) for i in range(5)]
    ids = await kz.record_interactions(items)
    assert ids == sorted(ids) and len(set(ids)) == 5
    stored = [await kz.get_interaction(i) for i in ids]
    assert [s.task_description for s in stored] == [f"task number {i}" for i in range(5)]


async def test_a_plain_object_body_is_one_interaction(kz: KaizenClient) -> None:
    import orjson

    async with kz.http.post("/interactions", data=orjson.dumps(interaction())) as resp:
        body: dict[str, Any] = await resp.json()
    assert resp.status == 201 and len(body["ids"]) == 1


async def test_list_pages_with_a_cursor(kz: KaizenClient) -> None:
    ids = await kz.record_interactions([Interaction(**interaction(f"t{i}")) for i in range(7)])
    seen: list[int] = []
    cursor = None
    while True:
        page = await kz.list_interactions(limit=3, cursor=cursor)
        seen += [i.id for i in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids


async def test_stats_count_what_was_recorded(kz: KaizenClient) -> None:
    await kz.record_interactions([Interaction(**interaction()) for _ in range(4)])
    stats = await kz.stats()
    assert stats.counts.interactions == 4
    assert stats.tenant == "default"
    assert stats.writer.writes >= 4
    assert (await kz.health()).status == "ok"


async def test_sync_client_records_and_reads(server: KaizenServer) -> None:
    import asyncio

    def work() -> tuple[int, str]:
        with SyncKaizenClient(server.url) as client:
            new_id = client.record_interaction(**interaction("Sync agent task"))
            return new_id, client.get_interaction(new_id).task_description

    new_id, task = await asyncio.to_thread(work)
    assert new_id > 0 and task == "Sync agent task"


async def test_a_timestamp_without_a_zone_is_utc(kz: KaizenClient) -> None:
    import orjson

    body = orjson.dumps(interaction(timestamp="2026-01-02T03:04:05"))
    async with kz.http.post("/interactions", data=body) as resp:
        new_id = (await resp.json())["ids"][0]
    stored = await kz.get_interaction(new_id)
    assert stored.timestamp is not None
    assert stored.timestamp.isoformat() == "2026-01-02T03:04:05+00:00"


async def test_the_sdk_reports_invalid_arguments_as_its_own_error(kz: KaizenClient) -> None:
    import pytest

    from client import BadRequestError

    with pytest.raises(BadRequestError) as bad:
        await kz.record_interaction(**interaction(completion_time=-5))
    assert bad.value.code == "invalid_request" and bad.value.status is None
    with pytest.raises(BadRequestError):
        await kz.get_relevant_learnings("task", min_confidence="CERTAIN")
    assert (await kz.stats()).counts.interactions == 0
