"""One nesting limit for every body and frame (schemas.common.MAX_JSON_DEPTH): deeper
JSON is a 4xx or an error frame, never a 500, and whatever is stored at the limit
reads back through the SDK."""

import logging
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from client import KaizenClient, KaizenError
from schemas import GetKnowledgeOp, MessageReply, SubscribeOp, SubscribeReply
from schemas.common import MAX_JSON_DEPTH
from server.runner import KaizenServer
from tests.conftest import eventually, interaction, running
from tests.hubkit import draft, raw_peer
from tests.test_bad_input_http import assert_error_shape, post

LIMIT = MAX_JSON_DEPTH


def deep(levels: int) -> bytes:
    """A JSON object nested `levels` deep, by hand: orjson writes only 254 levels."""
    return b'{"x":' * levels + b"1" + b"}" * levels


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return value


def with_field(body: dict[str, Any], path: tuple[str | int, ...], levels: int) -> bytes:
    """`body` encoded with the value at `path` replaced by an object `levels` deep."""
    marker = "\x00deep\x00"
    holder: Any = body
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = marker
    return orjson.dumps(body).replace(orjson.dumps(marker), deep(levels))


EVENT = {"event_type": "command_executed", "session_id": "s1", "timestamp": 1.7e9}
EXECUTION = {
    "agent_type": "code",
    "task_category": "tests",
    "completion_time": 1.0,
    "iterations": 1,
    "success": True,
    "actions_count": 1,
}
# (name, path, body, where the JSON field sits, the body's levels above the field)
BODIES: list[tuple[str, str, dict[str, Any], tuple[str | int, ...], int]] = [
    ("knowledge", "/knowledge", draft("t"), ("context",), 1),
    ("solution", "/knowledge/solutions", {"problem": "p", "solution": "s"}, ("context",), 1),
    ("discovery", "/knowledge/discoveries", {"title": "t"}, ("context",), 1),
    ("session", "/sessions", {}, ("metadata",), 1),
    ("message", "/sessions/s1/messages", {"role": "user", "content": "hi"}, ("metadata",), 1),
    ("analyze", "/tasks/analyze", {"description": "write tests"}, ("context",), 1),
    ("select", "/strategies/select", {"description": "write tests"}, ("context",), 1),
    ("events", "/events", {"events": [dict(EVENT)]}, ("events", 0, "metadata"), 3),
    ("executions", "/executions", dict(EXECUTION), ("metadata",), 1),
    ("kb item", "/kb/items", {"category": "c", "title": "t"}, ("content",), 1),
    ("interaction", "/interactions", interaction(), ("metadata",), 1),
]
IDS = [b[0] for b in BODIES]


async def start_session(kz: KaizenClient) -> None:
    status, reply = await post(kz, "/sessions", b'{"session_id": "s1"}')
    assert status in (200, 201), reply


@pytest.mark.parametrize(("name", "path", "body", "at", "above"), BODIES, ids=IDS)
@pytest.mark.parametrize("levels", [LIMIT, 300, 2000])
async def test_every_body_refuses_json_past_the_limit(
    kz: KaizenClient,
    name: str,
    path: str,
    body: dict[str, Any],
    at: tuple[str | int, ...],
    above: int,
    levels: int,
) -> None:
    """The field nests `levels` below its place in the body: past the limit however
    deep (2000 is past orjson's own 1024), a 422 in the error shape, not a 500."""
    await start_session(kz)
    status, reply = await post(kz, path, with_field(dict(body), at, levels))
    assert status == 422, reply
    assert_error_shape(reply, "invalid_request")
    assert reply["error"]["details"] == {"max_depth": LIMIT}


@pytest.mark.parametrize(("name", "path", "body", "at", "above"), BODIES, ids=IDS)
async def test_every_body_takes_json_at_the_limit(
    kz: KaizenClient,
    name: str,
    path: str,
    body: dict[str, Any],
    at: tuple[str | int, ...],
    above: int,
) -> None:
    await start_session(kz)
    status, reply = await post(kz, path, with_field(dict(body), at, LIMIT - above))
    assert status in (200, 201, 202), reply


@pytest.mark.parametrize("levels", [LIMIT, 300, 2000])
@pytest.mark.parametrize("op", ["publish", "share_solution", "broadcast_discovery"])
async def test_ws_publish_refuses_json_past_the_limit(
    server: KaizenServer, op: str, levels: int
) -> None:
    fields = {
        "publish": ("message", draft("t")),
        "share_solution": ("solution", {"problem": "p", "solution": "s"}),
        "broadcast_discovery": ("discovery", {"title": "t"}),
    }
    key, value = fields[op]
    frame = {"id": "deep-1", "op": op, key: value}
    raw = with_field(frame, (key, "context"), levels)
    async with raw_peer(server.url) as peer:
        await peer.ws.send_bytes(raw)
        error = await peer.recv()
        assert error["type"] == "error", error
        assert error["error"]["code"] == "invalid_request"
        # the id is read while the JSON is readable at all (orjson: 1024 levels)
        assert error["id"] == ("deep-1" if levels < 1024 else None)
        assert (await peer.call("ping"))["type"] == "reply"
        assert (await peer.call("query_knowledge"))["data"]["items"] == []


async def test_ws_record_and_calls_refuse_json_past_the_limit(server: KaizenServer) -> None:
    record = {"id": "r", "op": "record", "interactions": [interaction()]}
    call = {"id": "c", "op": "session_start", "args": {}}
    async with raw_peer(server.url) as peer:
        for frame, at in ((record, ("interactions", 0, "metadata")), (call, ("args", "metadata"))):
            await peer.ws.send_bytes(with_field(frame, at, 300))
            error = await peer.recv()
            assert (error["type"], error["error"]["code"]) == ("error", "invalid_request")
        assert (await peer.call("stats"))["data"]["counts"]["interactions"] == 0


async def test_what_is_stored_at_the_limit_reads_back_through_the_sdk(
    kz: KaizenClient,
) -> None:
    """Every reply carrying a stored value sits deeper than the body it came in:
    the SDK (pydantic, 200 levels) still reads each of them."""
    context = nested(LIMIT - 1)  # the body's object is level 1
    sub = kz.subscribe("general")
    await sub.start()
    status, published = await post(kz, "/knowledge", orjson.dumps(draft("deep", context=context)))
    assert status == 201, published
    push = await sub.get()
    assert push.data.context == context
    assert (await kz.get_knowledge(published["id"])).context == context
    assert [k.context for k in (await kz.query_knowledge()).items] == [context]
    reply = await kz.socket.request(
        GetKnowledgeOp(id="x", op="get_knowledge", knowledge_id=published["id"]), MessageReply
    )
    assert reply.data.context == context
    await sub.close()

    status, recorded = await post(kz, "/interactions", orjson.dumps(interaction(metadata=context)))
    assert status == 201, recorded
    assert (await kz.get_interaction(recorded["ids"][0])).metadata == context
    assert [i.metadata for i in (await kz.list_interactions()).items] == [context]
    item = await kz.add_knowledge(category="c", title="t", content=context)
    assert (await kz.get_knowledge_item(item.id)).content == context


def _deepen_stored_message(data_dir: Path, levels: int) -> None:
    """Give the stored message a context as deep as a server before the limit took
    (the SDK reads 200 levels): what an upgraded server may still send."""
    with sqlite3.connect(data_dir / "kaizen.sqlite3") as db:
        [(body,)] = db.execute("SELECT body FROM knowledge").fetchall()
        deeper = with_field(orjson.loads(body), ("context",), levels)
        db.execute("UPDATE knowledge SET body = ?", (deeper,))


async def test_the_sdk_never_drops_an_unreadable_frame_silently(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(data_dir) as server, KaizenClient(server.url) as kz:
        published = await kz.share_knowledge(
            knowledge_type="DISCOVERY", title="old", channel="general"
        )
    _deepen_stored_message(data_dir, 230)
    caplog.set_level(logging.WARNING, logger="kaizen.client")
    async with running(data_dir) as server, KaizenClient(server.url) as kz:
        op = GetKnowledgeOp(id="x", op="get_knowledge", knowledge_id=published.id)
        with pytest.raises(KaizenError, match="undecodable reply"):
            await kz.socket.request(op, MessageReply)  # now, not at the timeout
        assert kz.socket.undecodable == 1
        replay = SubscribeOp(id="x", op="subscribe", channel="general", since={})
        await kz.socket.request(replay, SubscribeReply)
        await eventually(lambda: _now(kz.socket.undecodable == 2))
    logged = [r.getMessage() for r in caplog.records if r.name == "kaizen.client"]
    assert any("undecodable push frame" in m and "channel general" in m for m in logged)


async def _now(value: bool) -> bool:
    return value
