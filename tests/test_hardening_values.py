"""Ids past SQLite's 64-bit range and times past 10^10 Unix seconds: refused as
invalid requests, over `/ws` as over HTTP, never an internal error."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from client import KaizenClient
from server.runner import KaizenServer
from tests.conftest import interaction
from tests.hubkit import raw_peer
from tests.test_bad_input_http import assert_error_shape, post
from tests.test_hardening_nesting import EXECUTION

TOO_BIG = 2**63
BIGGEST = 2**63 - 1

FRAMES: list[tuple[str, dict[str, Any]]] = [
    ("get_learning", {"learning_id": TOO_BIG}),
    ("get_knowledge", {"knowledge_id": TOO_BIG}),
    ("vote", {"knowledge_id": TOO_BIG}),
    ("applied", {"knowledge_id": TOO_BIG}),
    ("kb_get", {"args": {"item_id": TOO_BIG}}),
    ("kb_usage", {"args": {"item_id": TOO_BIG, "success": True}}),
    ("get_job", {"args": {"job_id": TOO_BIG}}),
    ("cancel_job", {"args": {"job_id": TOO_BIG}}),
    ("kb_promote", {"args": {"message_id": TOO_BIG, "category": "c"}}),
    ("select_strategy", {"args": {"task_id": TOO_BIG}}),
    (
        "record_outcome",
        {"args": {"strategy_id": TOO_BIG, "task_id": 1, "success": True, "actual_duration": 1}},
    ),
    ("record", {"interactions": [interaction(offered_learnings=[TOO_BIG])]}),
    ("record", {"interactions": [interaction(applied_learnings=[1, TOO_BIG])]}),
]


@pytest.mark.parametrize(
    ("op", "fields"), FRAMES, ids=[f"{o}-{i}" for i, (o, _) in enumerate(FRAMES)]
)
async def test_ws_ids_past_the_range_are_invalid(
    server: KaizenServer, op: str, fields: dict[str, Any]
) -> None:
    async with raw_peer(server.url) as peer:
        error = await peer.call(op, **fields)
        assert error["type"] == "error", error
        assert error["error"]["code"] == "invalid_request", error
        assert (await peer.call("ping"))["type"] == "reply"


@pytest.mark.parametrize(
    ("op", "fields"),
    [
        ("get_learning", {"learning_id": BIGGEST}),
        ("get_knowledge", {"knowledge_id": BIGGEST}),
        ("kb_get", {"args": {"item_id": BIGGEST}}),
        ("get_job", {"args": {"job_id": BIGGEST}}),
    ],
)
async def test_ws_the_largest_id_is_merely_not_found(
    server: KaizenServer, op: str, fields: dict[str, Any]
) -> None:
    async with raw_peer(server.url) as peer:
        error = await peer.call(op, **fields)
        assert (error["type"], error["error"]["code"]) == ("error", "not_found"), error


async def test_http_learning_ids_past_the_range_are_invalid(kz: KaizenClient) -> None:
    body = orjson.dumps(interaction(offered_learnings=[TOO_BIG]))
    status, reply = await post(kz, "/interactions", body)
    assert status == 422, reply
    assert_error_shape(reply, "invalid_request")
    assert (await kz.stats()).counts.interactions == 0


EVENT = {"event_type": "command_executed", "session_id": "s1"}
# (path, body with the time in it)
TIMED: list[tuple[str, Any]] = [
    ("/interactions", lambda t: interaction(timestamp=t)),
    ("/executions", lambda t: EXECUTION | {"timestamp": t}),
    ("/events", lambda t: {"events": [EVENT | {"timestamp": t}]}),
]


@pytest.mark.parametrize("when", [3e10, 2**40, -1, 1e10 + 1, "30000000000", "9999-01-01T00:00:00Z"])
@pytest.mark.parametrize(("path", "body"), TIMED, ids=[t[0] for t in TIMED])
async def test_times_out_of_range_are_refused(
    kz: KaizenClient, path: str, body: Any, when: Any
) -> None:
    """3e10 is not read as milliseconds (1970-12-14): it is past the range."""
    status, reply = await post(kz, path, orjson.dumps(body(when)))
    assert status == 422, reply
    assert_error_shape(reply, "invalid_request")


@pytest.mark.parametrize(("path", "body"), TIMED, ids=[t[0] for t in TIMED])
async def test_the_last_second_of_the_range_is_taken(
    kz: KaizenClient, path: str, body: Any
) -> None:
    status, reply = await post(kz, path, orjson.dumps(body(1e10)))
    assert status in (200, 201, 202), reply


async def test_a_number_is_unix_seconds(kz: KaizenClient) -> None:
    status, reply = await post(kz, "/interactions", orjson.dumps(interaction(timestamp=1e10)))
    assert status == 201, reply
    stored = await kz.get_interaction(reply["ids"][0])
    assert stored.timestamp == datetime.fromtimestamp(1e10, UTC)


@pytest.mark.parametrize("path", ["/learnings", "/anomalies"])
@pytest.mark.parametrize("since", ["30000000000", "9999-01-01T00:00:00Z"])
async def test_query_times_out_of_range_are_refused(
    kz: KaizenClient, path: str, since: str
) -> None:
    async with kz.http.get(path, params={"since": since}) as resp:
        assert resp.status == 422
        assert_error_shape(orjson.loads(await resp.read()), "invalid_request")


async def test_kb_import_times_out_of_range_are_refused(kz: KaizenClient) -> None:
    document = {"format": "kaizen.kb", "schema_version": 1, "exported_at": 3e10, "items": []}
    status, reply = await post(kz, "/kb/import", orjson.dumps(document))
    assert status == 422, reply
    assert_error_shape(reply, "invalid_request")
