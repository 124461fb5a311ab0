"""The `/ws` connection: JSON frames in, replies, errors and pushes out.

Frames are handled concurrently (up to `MAX_IN_FLIGHT` per connection, after which
the reader stops reading, which pushes back on the client through TCP), so replies
may come out of order: each names the request id it answers. A bad frame gets an
error frame and the connection stays open. See docs/protocol.md.

Publishing frames, the hub's hot path, take no task: the reader queues the write
and the commit hook queues the ack among the connection's pushes, so one transport
write carries both (`Connection._publish_soon`); `hub_write_delay_s`, if set,
delays these acks as it delays pushes. Every other frame, and a publish that
cannot be queued at once (a full write queue, a peer not reading its replies, a
channel not yet in memory or unknown), runs in a task of its own.
"""

import asyncio
import contextlib
import enum
import functools
import logging
import re
from collections.abc import Coroutine
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, TypeAdapter, ValidationError

import server
from schemas import (
    CLOSE_SLOW_CONSUMER,
    AnyOp,
    ClientFrame,
    ErrorFrame,
    HelloFrame,
    HubLimits,
    Limits,
    Published,
    encode,
)
from server.auth.service import Principal
from server.core.errors import KaizenServerError, PayloadTooLarge, Unavailable
from server.hub.outbox import CONTROL
from server.hub.wsframe import text_frame
from server.web.bodies import decode
from server.web.context import Services, principal, services
from server.web.errors import error_detail, from_validation
from server.web.ws_ops import (
    PUBLISH_FRAMES,
    PublishFrame,
    dispatch,
    message_of,
    publish_reply,
)

log = logging.getLogger("kaizen.ws")

CLIENT_FRAME: TypeAdapter[AnyOp] = TypeAdapter(ClientFrame)
MAX_IN_FLIGHT = 64
SLOW_CLOSE_TIMEOUT_S = 2.0


class ConnectionState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class WsSink:
    """The socket under a connection, as the hub writes to it: whole frames straight
    to the transport, beside aiohttp's own writes (each a whole frame, too)."""

    __slots__ = ("_conn", "_slow", "_transport")

    def __init__(self, conn: "Connection", transport: asyncio.Transport | None) -> None:
        self._conn = conn
        self._transport = transport
        self._slow = False

    def write(self, data: bytes) -> None:
        """Whole frames to the socket; nothing once it is closing (or for no bytes)."""
        t = self._transport
        if data and t is not None and not t.is_closing():
            t.write(data)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size() if self._transport else 0

    def closing(self) -> bool:
        t = self._transport
        return (
            self._slow
            or self._conn.state is not ConnectionState.OPEN
            or t is None
            or t.is_closing()
        )

    def close_slow(self) -> None:
        if not self._slow:
            self._slow = True
            self._conn.spawn(self._conn.close_slow())


class Connection:
    __slots__ = (
        "_chores",
        "_pending",
        "_slots",
        "_tasks",
        "_transport",
        "caller",
        "peer",
        "state",
        "svc",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        svc: Services,
        caller: Principal,
        transport: asyncio.Transport | None,
    ) -> None:
        self.ws = ws
        self.svc = svc
        self.caller = caller
        self.state = ConnectionState.OPEN
        self.peer = svc.hub.attach(caller.tenant, WsSink(self, transport))
        self._transport = transport
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: set[asyncio.Future[None]] = set()
        """Publishes queued without a task (`_publish_soon`), until their commit."""
        self._chores: set[asyncio.Task[None]] = set()

    def spawn(self, chore: Coroutine[Any, Any, None]) -> None:
        """Run a background chore of this connection, kept until it ends."""
        task = asyncio.create_task(chore)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def close_slow(self) -> None:
        """Close a subscriber that fell too far behind with 4008; if even the close
        frame cannot get through in time, abort the transport. Safe to cancel."""
        try:
            await asyncio.wait_for(
                self.close(CLOSE_SLOW_CONSUMER, b"slow consumer", grace_s=0), SLOW_CLOSE_TIMEOUT_S
            )
        except TimeoutError:
            if self._transport is not None:
                self._transport.abort()

    async def send(self, frame: BaseModel) -> None:
        """Send one frame; a peer that has gone is ignored. Safe to cancel."""
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_frame(encode(frame), WSMsgType.TEXT)

    async def close(
        self, code: int = WSCloseCode.GOING_AWAY, message: bytes = b"", grace_s: float = 5.0
    ) -> None:
        """Stop taking frames, let the ones in flight reply (up to `grace_s`), then
        close with `code` (1001 by default): a write that commits during shutdown
        still gets its ack. What the connection's queue holds (acks among pushes)
        is written out first, unless it is being closed for not reading it.
        Idempotent."""
        if self.state is not ConnectionState.OPEN:
            return
        self.state = ConnectionState.CLOSING
        queued = self.peer.outbox.take()
        if code != CLOSE_SLOW_CONSUMER:
            self.peer.sink.write(queued)
        if in_flight := self._tasks | self._pending:
            await asyncio.wait(in_flight, timeout=grace_s)
        await self.ws.close(code=code, message=message)

    def _hello(self) -> HelloFrame:
        """Built in its own call so that nothing of it outlives the send: an idle
        connection's memory is budgeted."""
        s = self.svc.settings
        limits = Limits(
            max_frame_bytes=s.max_frame_bytes,
            max_batch=s.max_batch,
            hub=HubLimits(
                max_message_bytes=s.hub_max_message_bytes,
                max_subscriptions=s.hub_max_subscriptions,
                publish_rate=s.hub_publish_rate,
                publish_burst=s.hub_publish_burst,
            ),
        )
        return HelloFrame(
            version=server.__version__,
            tenant=self.caller.tenant,
            agent=self.caller.agent,
            heartbeat_s=s.heartbeat_s,
            limits=limits,
        )

    async def serve(self) -> None:
        """Read frames until the peer or the server closes. Cancelling closes the socket."""
        await self.send(self._hello())
        try:
            async for msg in self.ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                if await self._admit():
                    self._start(msg.data)
                else:
                    await self._refuse(msg.data)
        finally:
            self.svc.hub.detach(self.peer)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._pending:  # `wait`, unlike `gather`, never cancels a queued write
                await asyncio.wait(set(self._pending))
            self.state = ConnectionState.CLOSED

    async def _admit(self) -> bool:
        """Take an in-flight slot for a frame, unless the connection is closing: it
        may begin to while the reader waits for a slot, and `close` waits only for
        the frames already in flight when it began. Safe to cancel."""
        if self.state is ConnectionState.OPEN:
            await self._slots.acquire()
            if self.state is ConnectionState.OPEN:
                return True
            self._slots.release()
        return False

    async def _refuse(self, raw: str | bytes) -> None:
        closing = Unavailable("the server is shutting down")
        await self.send(ErrorFrame(id=self._peek_id(raw), error=error_detail(closing)))

    def _start(self, raw: str | bytes) -> None:
        """Start one frame, whose slot is held: a publish that can be queued at once
        is queued here, anything else runs in a task (a bad frame too: the task
        parses it again to answer it)."""
        try:
            frame: AnyOp | None = self._parse(raw)
        except Exception:
            frame = None
        if not (isinstance(frame, PUBLISH_FRAMES) and self._publish_soon(frame)):
            self._spawn(raw, frame)

    def _spawn(self, raw: str | bytes, frame: AnyOp | None) -> None:
        task = asyncio.create_task(self._handle(raw, frame))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, raw: str | bytes, frame: AnyOp | None) -> None:
        try:
            if frame is None:
                frame = self._parse(raw)
            answer = await dispatch(self, frame)
            if answer is not None:
                await self.send(answer)
        except Exception as exc:
            request_id = frame.id if frame else self._peek_id(raw)
            await self.send(error_frame(request_id, exc))
        finally:
            self._slots.release()

    def _publish_soon(self, frame: PublishFrame) -> bool:
        """Queue a publish with no task, answered from its commit hook (`_answer`).
        False, having done nothing, when it must take the task path: the hub cannot
        queue it now, or the peer is not reading what it is sent (the task path's
        `send` then waits for the socket, so TCP pushes back on the publisher)."""
        if self._backed_up():
            return False
        ack = functools.partial(self._acked, frame)
        try:
            commit = self.svc.hub.publish_soon(self.caller, message_of(frame), ack)
        except Exception as exc:
            try:
                self._answer(error_frame(frame.id, exc))
            finally:
                self._slots.release()
            return True
        if commit is None:
            return False
        self._pending.add(commit)
        commit.add_done_callback(functools.partial(self._settled, frame.id))
        return True

    def _acked(self, frame: PublishFrame, published: Published) -> None:
        self._answer(publish_reply(frame, published))

    def _settled(self, request_id: str, commit: asyncio.Future[None]) -> None:
        """A queued publish is done: its ack went out from the commit hook, or its
        commit failed and the error is answered here. Nothing cancels these futures
        (a cancelled one would say nothing of the write, which may still commit
        and be acked)."""
        self._pending.discard(commit)
        self._slots.release()
        if not commit.cancelled() and (exc := commit.exception()) is not None:
            self._answer(error_frame(request_id, exc))

    def _answer(self, frame: BaseModel) -> None:
        """Send a reply without awaiting. While open it is queued among the pushes,
        so one transport write carries both; while closing it goes straight to the
        socket, ahead of the close frame that `close` sends once in-flight work is
        done (a write that commits during shutdown still gets its ack)."""
        if self.ws.closed:
            return
        data = text_frame(encode(frame))
        if self.state is ConnectionState.OPEN:
            self.svc.hub.fanout.push(self.peer, data, CONTROL)
        else:
            self.peer.sink.write(data)

    def _backed_up(self) -> bool:
        """Whether the peer is behind on reading: its socket buffer past the hub's
        high-water mark, or its queue of pushes and replies half full."""
        sink, outbox = self.peer.sink, self.peer.outbox
        high_water = self.svc.settings.hub_transport_high_water
        return sink.buffered() > high_water or len(outbox) > outbox.max_bytes // 2

    def _parse(self, raw: str | bytes) -> AnyOp:
        limit = self.svc.settings.max_frame_bytes
        if frame_bytes(raw) > limit:
            raise PayloadTooLarge("frame too large", max_frame_bytes=limit)
        return parse_frame(raw)

    def _peek_id(self, raw: str | bytes) -> str | None:
        if frame_bytes(raw) <= self.svc.settings.max_frame_bytes:
            return peek_id(raw)
        return leading_id(raw)


def error_frame(request_id: str | None, exc: BaseException) -> ErrorFrame:
    """The error frame answering `exc`; anything but our own errors is logged and
    answered as an internal error."""
    if not isinstance(exc, KaizenServerError):
        log.error("unhandled error on a ws frame", exc_info=exc)
        exc = KaizenServerError("internal error")
    return ErrorFrame(id=request_id, error=error_detail(exc))


def frame_bytes(raw: str | bytes) -> int:
    """A frame's size in bytes: aiohttp hands text frames over decoded."""
    if isinstance(raw, bytes) or raw.isascii():
        return len(raw)
    return len(raw.encode())


def parse_frame(raw: str | bytes) -> AnyOp:
    """Validate one client frame; bad JSON, unknown ops and bad fields raise."""
    try:
        return decode(raw, CLIENT_FRAME)
    except ValidationError as exc:
        raise from_validation(exc) from None


_LEADING_ID = re.compile(rb'^\s*\{\s*"id"\s*:\s*"([^"\\]{1,64})"')


def leading_id(raw: str | bytes) -> str | None:
    """The id of a frame that starts with it, read from its first bytes only:
    how an oversized frame's error can still name its request."""
    head = raw[:128].encode() if isinstance(raw, str) else raw[:128]
    match = _LEADING_ID.match(head)
    try:
        return match.group(1).decode() if match else None
    except UnicodeDecodeError:
        return None


def peek_id(raw: str | bytes) -> str | None:
    """The frame's request id, if it has a readable one, so errors can name it."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    request_id = value.get("id") if isinstance(value, dict) else None
    return request_id if isinstance(request_id, str) and 0 < len(request_id) <= 64 else None


async def websocket(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    ws = web.WebSocketResponse(
        heartbeat=svc.settings.heartbeat_s,
        max_msg_size=svc.settings.ws_hard_limit_bytes,
        compress=False,
    )
    await ws.prepare(request)
    conn = Connection(ws, svc, principal(request), request.transport)
    svc.sockets.add(conn)
    try:
        await conn.serve()
    finally:
        svc.sockets.discard(conn)
    return ws


__all__ = ["Connection", "websocket"]
