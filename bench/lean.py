"""Lean pub/sub clients for the fan-out bench: WebSocket (Kaizen) and RESP (Redis).

Two cores are shared by the server under test and the load generator, so every
microsecond the subscribers spend per delivery is a microsecond the server does not
get. aiohttp's client or redis-py cost several µs a message; these cost well under
one. Each connection is one asyncio Protocol; a TCP read that carries many frames
(the server coalesces writes) is walked with bytes.startswith/find, which run in
C, and push frames are *counted*, not decoded. Only a few "sampled" connections
per process decode each push, to read the publish time it carries for latency.

The WebSocket client is hand-written (RFC 6455): a GET /ws upgrade, then unmasked
server frames of 7-, 16- or 64-bit length, and masked client frames. Pings are
answered, since the server drops a connection that misses its heartbeat.

`subscriber_process` is a worker: it opens many subscribed connections on one
uvloop, tells its parent over a Pipe when they are ready, and then answers
"stats" with what it counted (and the latency samples since the last ask) until
told "stop".
"""

import asyncio
import base64
import contextlib
import os
import resource
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

import orjson

CONNECT_BATCH = 50
"""Connections opened at once per process: under aiohttp's listen backlog (128)
with two processes, so no SYN is dropped and retried a second later."""
REQUEST_TIMEOUT_S = 60.0

PUSH_HEAD = b'{"type":"push"'
PUBLISH_ACK_HEAD = b'{"type":"reply","op":"publish"'
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def raise_fd_limit() -> int:
    """Lift this process's open-file limit to the hard limit (5,000 sockets need it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- WebSocket framing -----------------------------------------------------------


def ws_upgrade(host: str, port: int, token: str | None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{auth}\r\n"
    ).encode()


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte `key` repeated (RFC 6455 §5.3), as one big-int
    XOR: a 4 KB frame costs a few µs, not a Python loop over 4,096 bytes."""
    n = len(payload)
    if n == 0:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little"
    )


def ws_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final client frame: clients must mask, with a fresh key each frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + mask(payload, key)


@dataclass
class WsScan:
    pushes: int = 0
    consumed: int = 0
    push_spans: list[tuple[int, int, int]] = field(default_factory=list)
    """(frame start, payload start, end) of each push, when asked to keep them."""
    others: list[tuple[int, int, int]] = field(default_factory=list)
    """(opcode, payload start, end) of every frame that is not a push."""


def scan_ws(buf: bytes | bytearray, keep_pushes: bool) -> WsScan:
    """Walk the complete server frames in `buf`, counting push frames by their first
    bytes. Server frames are never masked (RFC 6455 §5.1)."""
    scan = WsScan()
    n, i = len(buf), 0
    while n - i >= 2:
        length = buf[i + 1]
        if length & 0x80:
            raise ValueError("the server sent a masked frame")
        start = i + 2
        if length == 126:
            start = i + 4
            if start > n:
                break
            length = int.from_bytes(buf[i + 2 : start], "big")
        elif length == 127:
            start = i + 10
            if start > n:
                break
            length = int.from_bytes(buf[i + 2 : start], "big")
        end = start + length
        if end > n:
            break
        if buf.startswith(PUSH_HEAD, start):
            scan.pushes += 1
            if keep_pushes:
                scan.push_spans.append((i, start, end))
        else:
            scan.others.append((buf[i] & 0x0F, start, end))
        i = end
    scan.consumed = i
    return scan


# -- RESP framing ---------------------------------------------------------------


class RespError(Exception):
    """An error reply (`-ERR ...`), returned as a value rather than raised."""


RespValue = int | bytes | list[Any] | RespError | None


def resp_command(*args: bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def parse_resp(buf: bytes | bytearray, i: int) -> tuple[RespValue, int] | None:
    """One RESP2 value starting at `i`, and where the next begins; None if incomplete."""
    eol = buf.find(b"\r\n", i)
    if eol < 0:
        return None
    kind, line = buf[i], bytes(buf[i + 1 : eol])
    if kind == ord(":"):
        return int(line), eol + 2
    if kind == ord("+"):
        return line, eol + 2
    if kind == ord("-"):
        return RespError(line.decode(errors="replace")), eol + 2
    if kind == ord("$"):
        size = int(line)
        if size < 0:
            return None, eol + 2
        end = eol + 2 + size
        return (bytes(buf[eol + 2 : end]), end + 2) if end + 2 <= len(buf) else None
    if kind == ord("*"):
        items: list[Any] = []
        at = eol + 2
        for _ in range(int(line)):
            parsed = parse_resp(buf, at)
            if parsed is None:
                return None
            items.append(parsed[0])
            at = parsed[1]
        return items, at
    raise ValueError(f"bad RESP type byte {kind!r}")


@dataclass
class RespScan:
    pushes: int = 0
    consumed: int = 0
    push_spans: list[tuple[int, int, int]] = field(default_factory=list)
    """(push start, payload start, payload end), when asked to keep them."""
    others: list[RespValue] = field(default_factory=list)


def message_head(channel: bytes) -> bytes:
    """How every `message` push on `channel` starts, up to its payload's length."""
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$" % (len(channel), channel)


def scan_resp(buf: bytes | bytearray, head: bytes, keep_pushes: bool) -> RespScan:
    """Walk the complete replies in `buf`, counting `message` pushes by their known
    head; anything else (subscribe confirmations, PUBLISH counts) is parsed."""
    scan = RespScan()
    n, i, skip = len(buf), 0, len(head)
    while i < n:
        if buf.startswith(head, i):
            eol = buf.find(b"\r\n", i + skip)
            if eol < 0:
                break
            start = eol + 2
            end = start + int(buf[i + skip : eol])
            if end + 2 > n:
                break
            scan.pushes += 1
            if keep_pushes:
                scan.push_spans.append((i, start, end))
            i = end + 2
            continue
        parsed = parse_resp(buf, i)
        if parsed is None:
            break
        scan.others.append(parsed[0])
        i = parsed[1]
    scan.consumed = i
    return scan


# -- what a subscriber process counts --------------------------------------------


@dataclass
class Tally:
    deliveries: int = 0
    lagged: int = 0
    """Pushes the server said it dropped for this process's slow connections."""
    closed: int = 0
    """Subscribed connections that the server (or the network) closed."""
    last_ns: int = 0
    """Wall time of the latest receipt of a push."""
    latencies_ms: list[float] = field(default_factory=list)
    wire_bytes: int = 0
    wire_frames: int = 0
    """Bytes on the wire of the pushes the sampled connections saw, and how many."""
    notes: list[str] = field(default_factory=list)

    def take(self) -> dict[str, Any]:
        """Counters so far, plus the samples since the last take (which it clears)."""
        out = {
            "deliveries": self.deliveries,
            "lagged": self.lagged,
            "closed": self.closed,
            "last_ns": self.last_ns,
            "latencies_ms": self.latencies_ms,
            "wire_bytes": self.wire_bytes,
            "wire_frames": self.wire_frames,
            "notes": self.notes[:5],
        }
        self.latencies_ms, self.wire_bytes, self.wire_frames = [], 0, 0
        return out


# -- connections -------------------------------------------------------------------


class _Buffered(asyncio.Protocol):
    """Keeps the unparsed tail of the stream; the common case has none, so a read
    is scanned in place with no copy."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        view: bytes | bytearray = data
        if self.buf:
            self.buf += data
            view = self.buf
        consumed = self.consume(view)
        if view is self.buf:
            del self.buf[:consumed]
        elif consumed < len(data):
            self.buf += data[consumed:]

    def consume(self, view: bytes | bytearray) -> int:
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class WsConn(_Buffered):
    """A Kaizen /ws connection: request/reply for setup, a counted stream of pushes,
    and, for a publisher, a count of publish acks and errors."""

    def __init__(
        self, host: str, port: int, token: str | None, tally: Tally | None, sampled: bool
    ) -> None:
        super().__init__()
        self.upgrade = ws_upgrade(host, port, token)
        self.tally = tally
        self.sampled = sampled
        self.upgraded = False
        self.hello: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = 0
        self.acked = 0
        self.errors = 0
        self.first_error: str | None = None
        self.subscribed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.write(self.upgrade)

    def consume(self, view: bytes | bytearray) -> int:
        skip = 0
        if not self.upgraded:
            end = view.find(b"\r\n\r\n")
            if end < 0:
                return 0
            if not view.startswith(b"HTTP/1.1 101"):
                status = bytes(view[: view.find(b"\r\n")]).decode(errors="replace")
                self._fail(RuntimeError(f"upgrade refused: {status}"))
                self.close()
                return len(view)
            self.upgraded, skip = True, end + 4
        rest = view[skip:] if skip else view
        scan = scan_ws(rest, self.sampled)
        if scan.pushes:
            self._count(rest, scan)
        for opcode, start, end in scan.others:
            self._frame(opcode, rest[start:end])
        return skip + scan.consumed

    def _count(self, view: bytes | bytearray, scan: WsScan) -> None:
        tally = self.tally
        if tally is None:
            return
        now = time.time_ns()
        tally.deliveries += scan.pushes
        tally.last_ns = now
        for frame_start, start, end in scan.push_spans:
            sent = orjson.loads(view[start:end])["data"]["context"]["t"]
            tally.latencies_ms.append((now - sent) / 1e6)
            tally.wire_bytes += end - frame_start
            tally.wire_frames += 1

    def _frame(self, opcode: int, payload: bytes | bytearray) -> None:
        if opcode == OP_PING:
            self.write(ws_frame(bytes(payload), OP_PONG))
        elif opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._note(f"server closed with {code} {bytes(payload[2:]).decode(errors='replace')}")
            self.close()
        elif opcode in (OP_TEXT, OP_BINARY):
            self._text(payload)

    def _text(self, payload: bytes | bytearray) -> None:
        if payload.startswith(PUBLISH_ACK_HEAD):
            self.acked += 1
            return
        frame = orjson.loads(payload)
        kind = frame.get("type")
        if kind == "hello" and not self.hello.done():
            self.hello.set_result(frame)
        elif kind == "lagged" and self.tally is not None:
            self.tally.lagged += int(frame.get("dropped", 0))
        elif kind in ("reply", "error"):
            waiter = self.pending.pop(str(frame.get("id")), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(frame)
            elif kind == "error":
                self.errors += 1
                self.first_error = self.first_error or orjson.dumps(frame["error"]).decode()

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one op and wait for the reply or error frame that names it."""
        self.ids += 1
        rid = f"s{self.ids}"
        waiter = asyncio.get_running_loop().create_future()
        self.pending[rid] = waiter
        self.write(ws_frame(orjson.dumps({"id": rid, "op": op, **fields})))
        return await asyncio.wait_for(waiter, REQUEST_TIMEOUT_S)

    def _note(self, text: str) -> None:
        if self.tally is not None:
            self.tally.notes.append(text)

    def _fail(self, exc: Exception) -> None:
        if not self.hello.done():
            self.hello.set_exception(exc)
        for waiter in self.pending.values():
            if not waiter.done():
                waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._fail(ConnectionError(f"connection lost: {exc}"))
        if self.subscribed and self.tally is not None:
            self.tally.closed += 1


class RespConn(_Buffered):
    """A Redis connection: replies in order for setup, a counted stream of
    `message` pushes on one channel, and, for a publisher, the PUBLISH counts."""

    def __init__(self, channel: bytes, tally: Tally | None, sampled: bool) -> None:
        super().__init__()
        self.head = message_head(channel)
        self.tally = tally
        self.sampled = sampled
        self.waiters: deque[asyncio.Future[RespValue]] = deque()
        self.acked = 0
        self.receivers = 0
        self.errors = 0
        self.first_error: str | None = None
        self.subscribed = False

    def consume(self, view: bytes | bytearray) -> int:
        scan = scan_resp(view, self.head, self.sampled)
        if scan.pushes and self.tally is not None:
            self._count(view, scan, self.tally)
        for value in scan.others:
            self._reply(value)
        return scan.consumed

    def _count(self, view: bytes | bytearray, scan: RespScan, tally: Tally) -> None:
        now = time.time_ns()
        tally.deliveries += scan.pushes
        tally.last_ns = now
        for push_start, start, end in scan.push_spans:
            sent = orjson.loads(view[start:end])["t"]
            tally.latencies_ms.append((now - sent) / 1e6)
            tally.wire_bytes += end + 2 - push_start
            tally.wire_frames += 1

    def _reply(self, value: RespValue) -> None:
        if self.waiters:
            self.waiters.popleft().set_result(value)
        elif isinstance(value, int):
            self.acked += 1
            self.receivers += value
        else:
            self.errors += 1
            self.first_error = self.first_error or repr(value)

    async def request(self, *args: bytes) -> RespValue:
        """Send one command and wait for its reply (replies come back in order)."""
        waiter: asyncio.Future[RespValue] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.write(resp_command(*args))
        return await asyncio.wait_for(waiter, REQUEST_TIMEOUT_S)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"connection lost: {exc}"))
        if self.subscribed and self.tally is not None:
            self.tally.closed += 1


async def open_ws(
    host: str, port: int, token: str | None, tally: Tally | None = None, sampled: bool = False
) -> WsConn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: WsConn(host, port, token, tally, sampled), host, port
    )
    await asyncio.wait_for(conn.hello, REQUEST_TIMEOUT_S)
    return conn


async def open_resp(
    host: str, port: int, channel: bytes, tally: Tally | None = None, sampled: bool = False
) -> RespConn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: RespConn(channel, tally, sampled), host, port)
    return conn


# -- subscriber worker process -----------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    system: str
    """The protocol: "kaizen" or "redis"."""
    host: str
    port: int
    channel: str
    connections: int
    sampled: int
    """How many of the connections decode their pushes for latency and size."""
    token: str | None = None


async def subscribe_one(spec: WorkerSpec, tally: Tally, sampled: bool) -> _Buffered:
    if spec.system == "kaizen":
        ws = await open_ws(spec.host, spec.port, spec.token, tally, sampled)
        reply = await ws.request("subscribe", channel=spec.channel)
        if reply.get("type") != "reply":
            ws.close()
            raise RuntimeError(f"subscribe refused: {reply}")
        ws.subscribed = True
        return ws
    resp = await open_resp(spec.host, spec.port, spec.channel.encode(), tally, sampled)
    confirm = await resp.request(b"SUBSCRIBE", spec.channel.encode())
    if not (isinstance(confirm, list) and confirm[:1] == [b"subscribe"]):
        resp.close()
        raise RuntimeError(f"SUBSCRIBE refused: {confirm!r}")
    resp.subscribed = True
    return resp


async def open_subscribers(spec: WorkerSpec, tally: Tally) -> tuple[list[_Buffered], list[str]]:
    """Open and subscribe `spec.connections` connections, a batch at a time."""
    conns: list[_Buffered] = []
    failures: list[str] = []
    for first in range(0, spec.connections, CONNECT_BATCH):
        batch = range(first, min(spec.connections, first + CONNECT_BATCH))
        results = await asyncio.gather(
            *(subscribe_one(spec, tally, k < spec.sampled) for k in batch),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                failures.append(repr(result))
            else:
                conns.append(result)
    return conns, failures


async def receive(pipe: Connection) -> Any:
    """Wait for the next object on a Pipe without blocking the event loop: wait
    until it is readable, then read the whole object (the sender is mid-write)."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(pipe.fileno(), wake)
    try:
        await readable
    finally:
        loop.remove_reader(pipe.fileno())
        # uvloop made the fd non-blocking; recv and send expect a blocking one.
        os.set_blocking(pipe.fileno(), True)
    return pipe.recv()


async def serve_parent(spec: WorkerSpec, pipe: Connection) -> None:
    tally = Tally()
    conns, failures = await open_subscribers(spec, tally)
    pipe.send({"ready": len(conns), "failures": len(failures), "first_failure": failures[:1]})
    while await receive(pipe) != "stop":
        pipe.send(tally.take())
    for conn in conns:
        conn.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.lost for c in conns)), 5)
    pipe.send("stopped")


def subscriber_process(spec: WorkerSpec, pipe: Connection) -> None:
    """Entry point of a spawned subscriber process."""
    import uvloop

    raise_fd_limit()
    uvloop.run(serve_parent(spec, pipe))
