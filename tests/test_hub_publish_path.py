"""Publishing over `/ws` without a task per frame: acks ride the connection's queue,
yet a publisher that stops reading is still held back by TCP, and a shutdown still
answers every publish it read."""

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from server.runner import KaizenServer
from server.web.context import SERVICES
from server.web.ws import MAX_IN_FLIGHT, Connection
from tests.conftest import eventually, running, settings_for
from tests.hubkit import draft, handshake, masked

UNLIMITED = {"hub_publish_rate": 1_000_000, "hub_publish_burst": 1_000_000}


def publish_frame(n: int, content: str = "") -> bytes:
    message = draft(f"m{n}", content=content)
    return orjson.dumps({"id": str(n), "op": "publish", "message": message})


def read_replies(sock: socket.socket, count: int) -> list[dict[str, Any]]:
    """Past the upgrade response, server frames (unmasked text) until `count`
    publish replies or errors have come; those, decoded."""
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    at = buf.index(b"\r\n\r\n") + 4
    frames: list[dict[str, Any]] = []
    while len(frames) < count:
        payload, end = _one_frame(buf, at)
        if payload is None:
            del buf[:at]
            at = 0
            buf += sock.recv(65536)
        else:
            frame = orjson.loads(payload)
            if frame.get("op") == "publish" or frame["type"] == "error":
                frames.append(frame)
            at = end
    return frames


def _one_frame(buf: bytearray, at: int) -> tuple[bytes | None, int]:
    """The payload of the frame at `at`, if whole, and where the next one starts."""
    if len(buf) < at + 2:
        return None, at
    size, start = buf[at + 1] & 0x7F, at + 2
    if size == 126:
        size, start = int.from_bytes(buf[at + 2 : at + 4], "big"), at + 4
    elif size == 127:
        size, start = int.from_bytes(buf[at + 2 : at + 10], "big"), at + 10
    if len(buf) < start + size:
        return None, at
    return bytes(buf[start : start + size]), start + size


def the_connection(server: KaizenServer) -> Connection:
    (conn,) = server.app[SERVICES].sockets
    assert isinstance(conn, Connection)
    return conn


async def test_acks_to_a_peer_that_stopped_reading_leave_its_queue_bounded(
    data_dir: Path,
) -> None:
    """Acks queue among the pushes only while the peer keeps up. This peer takes
    its own pushes (16 KB each) and stops reading: once its socket and queue back
    up, its publishes take the task path, whose acks go to the socket as before
    (and wait for it, as aiohttp's writer does). Its queue stays at its limit,
    where acks alone, never dropped, would have grown it by ~300 KB."""
    count, outbox = 2500, 64 << 10
    limits = {"hub_transport_high_water": 16 << 10, "hub_outbox_bytes": outbox}
    async with running(data_dir, **UNLIMITED, **limits, hub_max_drops=10**9) as server:
        sock = handshake(server.url)
        subscribe = orjson.dumps({"id": "s", "op": "subscribe", "channel": "general"})
        frames = [masked(publish_frame(n, "x" * 16_000)) for n in range(count)]
        sock.sendall(masked(subscribe))
        sending = asyncio.create_task(asyncio.to_thread(sock.sendall, b"".join(frames)))
        try:
            await eventually(_published(server, count))
            assert len(the_connection(server).peer.outbox) <= outbox + MAX_IN_FLIGHT * 256
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # read faster
            answers = await asyncio.to_thread(read_replies, sock, count)
            await sending
        finally:
            sock.close()
    assert {a["id"] for a in answers if a["type"] == "reply"} == {str(n) for n in range(count)}


def _published(server: KaizenServer, count: int) -> Any:
    async def probe() -> bool:
        return server.app[SERVICES].hub.published >= count

    return probe


@pytest.mark.parametrize("write_delay_s", [0.0, 0.5], ids=["flushed", "acks-queued"])
async def test_publishes_in_flight_at_shutdown_are_answered_before_the_close(
    data_dir: Path, write_delay_s: float
) -> None:
    """With a write delay the shutdown finds acks still queued among the pushes:
    `close` writes them out before the close frame."""
    settings = settings_for(data_dir, **UNLIMITED, hub_write_delay_s=write_delay_s)
    server = KaizenServer(settings)
    await server.start()
    answers: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(server.url + "/ws") as ws:
        await ws.receive()
        for n in range(400):
            await ws.send_bytes(publish_frame(n))
        await eventually(_published_some(server, queued_acks=write_delay_s > 0))
        stopping = asyncio.create_task(server.stop())
        while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
            answers.append(orjson.loads(msg.data))
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        await stopping
    ids = sorted(int(a["id"]) for a in answers)
    assert ids == list(range(len(ids)))  # every frame it read is answered, once
    assert answers[0]["type"] == "reply"
    assert all(a["type"] == "reply" or a["error"]["code"] == "unavailable" for a in answers)


def _published_some(server: KaizenServer, queued_acks: bool) -> Any:
    async def probe() -> bool:
        if server.app[SERVICES].hub.published == 0:
            return False
        return not queued_acks or len(the_connection(server).peer.outbox) > 0

    return probe
