"""A lean HTTP/1.1 keep-alive client for load generation, in the spirit of wrk:
pre-encoded requests, one asyncio Protocol per connection, replies framed by
Content-Length. aiohttp's client costs ~150 µs a request, which would make the
load generator, not the server, the thing measured."""

import asyncio
import re
from urllib.parse import urlsplit

_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        match = _LENGTH.search(self.buf, 0, end)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(self.buf) >= total and self.waiter is not None and not self.waiter.done():
            status = int(self.buf[9:12])
            del self.buf[:total]
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))


class RawHttpPool:
    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.size = size
        self._idle: asyncio.Queue[_Conn] = asyncio.Queue()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            _, conn = await loop.create_connection(_Conn, self.host, self.port)
            self._idle.put_nowait(conn)

    def request(self, method: str, path: str, body: bytes, token: str | None = None) -> bytes:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def send(self, request: bytes) -> int:
        """Send on an idle connection and wait for the status (waiting for a free
        connection is part of the time)."""
        conn = await self._idle.get()
        try:
            conn.waiter = asyncio.get_running_loop().create_future()
            assert conn.transport is not None
            conn.transport.write(request)
            return await conn.waiter
        finally:
            self._idle.put_nowait(conn)

    def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn.transport is not None:
                conn.transport.close()
