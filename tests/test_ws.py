"""The /ws protocol: ops, replies by request id, and error frames that keep the socket open."""

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from client import (
    BadRequestError,
    ConnectionLostError,
    Interaction,
    KaizenClient,
    PayloadTooLargeError,
)
from schemas import LearningsQuery, LearningType
from server.runner import KaizenServer
from server.web.context import SERVICES
from server.web.ws import Connection
from tests.conftest import eventually, interaction, running, settings_for


async def raw_socket(kz: KaizenClient) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await kz.http.ws_connect("/ws")
    hello = orjson.loads((await ws.receive()).data)
    return ws, hello


async def ask(ws: aiohttp.ClientWebSocketResponse, frame: bytes | str) -> dict[str, Any]:
    if isinstance(frame, str):
        await ws.send_str(frame)
    else:
        await ws.send_bytes(frame)
    reply: dict[str, Any] = orjson.loads((await ws.receive()).data)
    return reply


async def test_hello_names_the_tenant_and_limits(kz: KaizenClient) -> None:
    ws, hello = await raw_socket(kz)
    assert hello["type"] == "hello" and hello["tenant"] == "default"
    assert hello["limits"]["max_batch"] == 5000
    await ws.close()


async def test_record_over_the_socket_is_durable(kz: KaizenClient) -> None:
    ids = await kz.socket.record([Interaction(**interaction()) for _ in range(3)])
    assert len(ids) == 3
    assert (await kz.get_interaction(ids[1])).task_description == "Create Python function"


async def test_learnings_and_ping_over_the_socket(kz: KaizenClient) -> None:
    await kz.socket.record([Interaction(**interaction()) for _ in range(3)])
    query = LearningsQuery(task="Create a Python function", type=LearningType.SUCCESS_PATTERN)
    page = await eventually(lambda: _items(kz, query))
    assert page[0].support == 3
    await kz.socket.ping()


async def _items(kz: KaizenClient, query: LearningsQuery) -> list[Any]:
    return (await kz.socket.learnings(query)).items


BAD_FRAMES: list[tuple[str, bytes | str, str, str | None]] = [
    ("malformed json", '{"op": "ping", "id": ', "malformed_json", None),
    ("not an object", "[1,2]", "invalid_request", None),
    ("unknown op", '{"op": "fly", "id": "r1"}', "unknown_op", "r1"),
    ("no op", '{"id": "r2"}', "unknown_op", "r2"),
    ("missing id", '{"op": "ping"}', "invalid_request", None),
    ("unknown field", '{"op": "ping", "id": "r3", "x": 1}', "invalid_request", "r3"),
    (
        "wrong type",
        orjson.dumps({"op": "record", "id": "r4", "interactions": [interaction(success="no")]}),
        "invalid_request",
        "r4",
    ),
    (
        "empty batch",
        orjson.dumps({"op": "record", "id": "r5", "interactions": []}),
        "invalid_request",
        "r5",
    ),
    (
        "bad query",
        orjson.dumps({"op": "learnings", "id": "r6", "query": {"limit": -1}}),
        "invalid_request",
        "r6",
    ),
]


@pytest.mark.parametrize(
    ("name", "frame", "code", "request_id"), BAD_FRAMES, ids=[f[0] for f in BAD_FRAMES]
)
async def test_bad_frames_get_error_frames_and_the_socket_survives(
    kz: KaizenClient, name: str, frame: bytes | str, code: str, request_id: str | None
) -> None:
    ws, _ = await raw_socket(kz)
    error = await ask(ws, frame)
    assert error["type"] == "error"
    assert error["id"] == request_id
    assert error["error"]["code"] == code
    assert await ask(ws, '{"op": "ping", "id": "after"}') == {
        "type": "reply",
        "op": "ping",
        "id": "after",
    }
    assert (await kz.stats()).counts.interactions == 0
    await ws.close()


async def test_oversized_frame_and_batch_are_refused(data_dir: Path) -> None:
    async with running(data_dir, max_frame_bytes=2048, max_batch=2) as server:
        async with KaizenClient(server.url) as kz:
            with pytest.raises(PayloadTooLargeError) as big:
                await kz.socket.record([Interaction(**interaction(metadata={"x": "y" * 4000}))])
            assert big.value.code == "payload_too_large"
            with pytest.raises(PayloadTooLargeError) as many:
                await kz.socket.record([Interaction(**interaction())] * 3)
            assert many.value.code == "batch_too_large"
            await kz.socket.ping()
            assert (await kz.stats()).counts.interactions == 0


async def test_sdk_surfaces_error_frames_as_exceptions(kz: KaizenClient) -> None:
    with pytest.raises(BadRequestError) as bad:
        await kz.socket.learnings(LearningsQuery(cursor="not-a-cursor"))
    assert bad.value.code == "invalid_request"
    await kz.socket.ping()


async def test_sdk_reconnects_after_the_server_drops_it(
    server: KaizenServer, kz: KaizenClient
) -> None:
    await kz.socket.ping()
    for conn in list(server.app[SERVICES].sockets):
        await conn.close(code=1011)
    await eventually(lambda: _reconnected(kz))
    ids = await kz.socket.record([Interaction(**interaction())])
    assert kz.socket.connects >= 2 and len(ids) == 1


async def _reconnected(kz: KaizenClient) -> bool:
    try:
        await kz.socket.ping()
    except ConnectionLostError:
        return False
    return kz.socket.connects >= 2


async def test_shutdown_closes_sockets_with_1001(data_dir: Path) -> None:
    server = KaizenServer(settings_for(data_dir))
    await server.start()
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url + "/ws") as ws:
        await ws.receive()
        stopping = asyncio.create_task(server.stop())
        closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert closing.data == 1001
        await stopping
    await server.stop()


async def test_frame_size_counts_bytes_not_characters(data_dir: Path) -> None:
    async with running(data_dir, max_frame_bytes=1024) as server:
        async with KaizenClient(server.url) as kz:
            ws, _ = await raw_socket(kz)
            frame = orjson.dumps({"id": "wide", "op": "ping", "pad": "é" * 600}).decode()
            assert len(frame) < 1024 < len(frame.encode())
            error = await ask(ws, frame)
            assert (error["id"], error["error"]["code"]) == ("wide", "payload_too_large")
            await ws.close()


async def test_an_oversized_frame_with_an_unreadable_id_still_gets_an_error(data_dir: Path) -> None:
    async with running(data_dir, max_frame_bytes=1024) as server:
        async with KaizenClient(server.url) as kz:
            ws, _ = await raw_socket(kz)
            error = await ask(
                ws, b'{"id": "\xff\xfe", "op": "ping", "pad": "' + b"x" * 2000 + b'"}'
            )
            assert (error["id"], error["error"]["code"]) == (None, "payload_too_large")
            await ws.close()


async def _until_read(server: KaizenServer) -> None:
    """Until the server is handling a frame, or 2 s (then it has answered already)."""
    for _ in range(200):
        if any(isinstance(c, Connection) and c._tasks for c in server.app[SERVICES].sockets):
            return
        await asyncio.sleep(0.01)


async def test_a_write_in_flight_at_shutdown_is_answered_before_the_close(data_dir: Path) -> None:
    server = KaizenServer(settings_for(data_dir))
    await server.start()
    frame = orjson.dumps({"id": "late", "op": "record", "interactions": [interaction()] * 2000})
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url + "/ws") as ws:
        await ws.receive()
        await ws.send_bytes(frame)
        await _until_read(server)  # frames the server never read are lost to any close
        stopping = asyncio.create_task(server.stop())
        first = await ws.receive()
        assert first.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), first
        answer = orjson.loads(first.data)
        assert answer["id"] == "late"
        assert answer["type"] == "reply" or answer["error"]["code"] == "unavailable"
        closing = await ws.receive()
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        await stopping
