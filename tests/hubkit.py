"""Helpers for hub tests: a raw WebSocket peer speaking the protocol's JSON frames,
and a bare socket for peers that misbehave."""

import contextlib
import socket
from base64 import b64encode
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson


class RawPeer:
    """A bare `/ws` client: send a frame dict, read frame dicts."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = 0
        self.backlog: list[dict[str, Any]] = []
        """Pushes that arrived while `call` waited for its reply."""

    async def send(self, op: str, **fields: Any) -> str:
        self._ids += 1
        request_id = f"r{self._ids}"
        await self.ws.send_bytes(orjson.dumps({"id": request_id, "op": op, **fields}))
        return request_id

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
        frame: dict[str, Any] = orjson.loads(msg.data)
        return frame

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send and return the reply or error naming this request; pushes meanwhile
        go to `backlog`, where `pushes` finds them first."""
        request_id = await self.send(op, **fields)
        while True:
            frame = await self.recv()
            if frame.get("id") == request_id:
                return frame
            if frame["type"] == "push":
                self.backlog.append(frame)

    async def pushes(self, count: int) -> list[dict[str, Any]]:
        found, self.backlog = self.backlog[:count], self.backlog[count:]
        while len(found) < count:
            frame = await self.recv()
            if frame["type"] == "push":
                found.append(frame)
        return found


@contextlib.asynccontextmanager
async def raw_peer(url: str, token: str | None = None) -> AsyncIterator[RawPeer]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}/ws", headers=headers) as ws:
            peer = RawPeer(ws)
            hello = await peer.recv()
            assert hello["type"] == "hello"
            yield peer


def draft(title: str, **fields: Any) -> dict[str, Any]:
    return {"knowledge_type": "DISCOVERY", "title": title, "channel": "general"} | fields


def masked(payload: bytes) -> bytes:
    """A client's text frame (RFC 6455 §5.2), masked with zeros, under 64 KiB."""
    size = len(payload)
    head = (
        bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2, "big")
    )
    return head + b"\x00\x00\x00\x00" + payload


def handshake(url: str) -> socket.socket:
    """A WebSocket socket with a tiny receive buffer, upgrade sent, nothing read."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = b64encode(b"0123456789abcdef").decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock
