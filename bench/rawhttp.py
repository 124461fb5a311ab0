"""A lean HTTP/1.1 keep-alive load generator, in the spirit of wrk2: pre-encoded
requests, one asyncio Protocol per connection, replies framed by Content-Length,
and no task per request. In open loop each request has a due time (rate × t) and
its latency runs from then, so time spent waiting for a free connection counts
(no coordinated omission). aiohttp's client costs ~150 µs a request, which would
make the load generator, not the server, the thing measured."""

import asyncio
import re
import time
from collections import deque
from typing import cast
from urllib.parse import urlsplit

TICK_S = 0.001
"""How often the open loop releases due requests: often enough for ms latencies,
rarely enough that the generator does not steal the server's CPU."""
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


class _Conn(asyncio.Protocol):
    def __init__(self, driver: "HttpLoad") -> None:
        self.driver = driver
        self.buf = bytearray()
        self.due = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.driver.connection_made(self)

    def send(self, due: float) -> None:
        self.due = due
        assert self.transport is not None
        self.transport.write(self.driver.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        match = _LENGTH.search(self.buf, 0, end)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(self.buf) >= total:
            status = int(self.buf[9:12])
            del self.buf[:total]
            self.driver.done(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.errors += 1


class HttpLoad:
    def __init__(self, url: str, connections: int, request: bytes, ok_status: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.connections = connections
        self.request = request
        self.ok_status = ok_status
        self.latencies: list[float] = []
        self.errors = 0
        self._idle: list[_Conn] = []
        self._backlog: deque[float] = deque()
        self._closed_loop = True
        self._running = False

    async def run(self, seconds: float, rate: float) -> float:
        """Drive load for `seconds`: closed loop when rate is 0, else open loop at
        `rate` requests/s. Returns the elapsed time."""
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            await loop.create_connection(lambda: _Conn(self), self.host, self.port)
        conns = list(self._idle)
        self._closed_loop, self._running = rate == 0, True
        start = time.perf_counter()
        sent = 0
        if self._closed_loop:
            for conn in list(self._idle):
                self._idle.remove(conn)
                conn.send(start)
        while (now := time.perf_counter()) < start + seconds:
            if not self._closed_loop:
                due_count = int((now - start) * rate)
                self._backlog.extend(start + k / rate for k in range(sent, due_count))
                sent = max(sent, due_count)
                self._drain()
            await asyncio.sleep(TICK_S)
        self._running = False
        elapsed = time.perf_counter() - start
        await asyncio.sleep(0.2)
        for conn in conns + self._idle:
            if conn.transport is not None:
                conn.transport.close()
        return elapsed

    def _drain(self) -> None:
        while self._backlog and self._idle:
            self._idle.pop().send(self._backlog.popleft())

    def done(self, conn: _Conn, status: int) -> None:
        now = time.perf_counter()
        if status == self.ok_status:
            self.latencies.append(now - conn.due)
        else:
            self.errors += 1
        if not self._running:
            return
        if self._closed_loop:
            conn.send(now)
        else:
            self._idle.append(conn)
            self._drain()

    def connection_made(self, conn: _Conn) -> None:
        self._idle.append(conn)


def http_request(host: str, method: str, path: str, body: bytes, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
