"""The SDK's WebSocket: one connection to `/ws`, reconnected with backoff.

Requests are matched to replies by request id, so many can be in flight at once.
When the connection drops, requests in flight fail with `ConnectionLostError`
(they may have been applied), and the socket reconnects in the background with
exponential backoff and full jitter (AWS Architecture Blog, "Exponential Backoff
and Jitter", 2015): sleep uniform(0, min(cap, base · 2^attempt)).

Subscriptions survive reconnects: the socket keeps the last offset and epoch it
saw on each channel and resubscribes with them as `since`, so the server replays
the gap; a push at or below a channel's last offset (same epoch) is a duplicate
and is dropped.
"""

import asyncio
import contextlib
import enum
import itertools
import logging
import random
from typing import Any, TypeVar

import aiohttp
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from client._channels import matches
from client._ops import operation
from client.errors import ConnectionLostError, KaizenError, TransportError, error_for
from client.subscription import Subscription
from schemas import (
    ErrorFrame,
    HelloFrame,
    Interaction,
    LaggedFrame,
    LearningsOp,
    LearningsPage,
    LearningsQuery,
    LearningsReply,
    PingOp,
    PongReply,
    PushFrame,
    RecordOp,
    RecordReply,
    ServerFrame,
    StreamPosition,
    SubscribeOp,
    SubscribeReply,
    UnsubscribeOp,
    UnsubscribeReply,
    encode,
)
from schemas.calls import CallName, CallOp, CallReply

R = TypeVar("R", bound=BaseModel)
SERVER_FRAME: TypeAdapter[Any] = TypeAdapter(ServerFrame)
_NEWER_TYPE = {"union_tag_invalid"}
"""The only failure a frame may meet quietly: a `type` this SDK does not know."""

log = logging.getLogger("kaizen.client")


class SocketState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class KaizenSocket:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        timeout: float = 30.0,
        backoff_base: float = 0.05,
        backoff_cap: float = 5.0,
    ) -> None:
        self._session = session
        self._url = url
        self._timeout = timeout
        self._backoff = (backoff_base, backoff_cap)
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._opened = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._fatal: KaizenError | None = None
        self.state = SocketState.IDLE
        self.hello: HelloFrame | None = None
        self.connects = 0
        self.positions: dict[str, StreamPosition] = {}
        """The last offset seen on each channel, with its epoch."""
        self._subs: dict[str, Subscription] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self.undecodable = 0
        """Frames of a known type this SDK could not read: each was logged, a reply
        failed its request, and a push was lost (fetch it with `query_knowledge`)."""

    async def connect(self) -> HelloFrame:
        """Open the connection (once) and wait for the server's hello. Safe to cancel."""
        if self.state is SocketState.CLOSED:
            raise TransportError("socket is closed")
        if self._task is None:
            self.state = SocketState.CONNECTING
            self._task = asyncio.create_task(self._supervise(), name="kaizen-socket")
        await self._wait_open()
        assert self.hello is not None
        return self.hello

    @operation("record_interactions")
    async def record(self, interactions: list[Interaction]) -> list[int]:
        frame = RecordOp(id=self._next_id(), op="record", interactions=interactions)
        return (await self._request(frame, RecordReply)).data.ids

    @operation("learnings")
    async def learnings(self, query: LearningsQuery) -> LearningsPage:
        frame = LearningsOp(id=self._next_id(), op="learnings", query=query)
        return (await self._request(frame, LearningsReply)).data

    @operation("ping")
    async def ping(self) -> None:
        await self._request(PingOp(id=self._next_id(), op="ping"), PongReply)

    async def request(self, frame: Any, reply_type: type[R]) -> R:
        """Send any client frame (its `id` is filled in) and wait for its reply."""
        return await self._request(frame.model_copy(update={"id": self._next_id()}), reply_type)

    async def call(self, op: CallName, args: dict[str, Any] | None = None) -> Any:
        """A service call over the socket (docs/protocol.md, "Service calls"): the
        reply's `data`, the JSON form of the HTTP reply model. Cancelling abandons
        the reply, not the call."""
        frame = CallOp.model_construct(id=self._next_id(), op=op, args=args or {})
        reply = await self._request(frame, CallReply)
        return reply.data

    @operation("subscribe")
    async def subscribe(self, sub: Subscription) -> None:
        """Subscribe `sub` (live only: it starts from now). Replaces a subscription
        to the same channel or pattern. Safe to cancel."""
        self._subs[sub.channel] = sub
        await self._send_subscribe(sub, None)

    @operation("unsubscribe")
    async def unsubscribe(self, sub: Subscription) -> None:
        if self._subs.get(sub.channel) is sub:
            del self._subs[sub.channel]
            frame = UnsubscribeOp(id=self._next_id(), op="unsubscribe", channel=sub.channel)
            await self._request(frame, UnsubscribeReply)

    async def _send_subscribe(
        self, sub: Subscription, since: dict[str, StreamPosition] | None
    ) -> None:
        fields = sub.request.model_dump(exclude={"since"})
        frame = SubscribeOp.model_construct(
            id=self._next_id(), op="subscribe", since=since, **fields
        )
        reply = await self._request(frame, SubscribeReply)
        for channel, position in reply.data.positions.items():
            known = self.positions.get(channel)
            if known is None or known.epoch != position.epoch or channel in reply.data.lost:
                self.positions[channel] = position
        sub._replied(reply.data)

    async def _resubscribe(self) -> None:
        """After a reconnect: subscribe again from the last offsets seen."""
        for sub in list(self._subs.values()):
            since = {c: p for c, p in self.positions.items() if matches(sub.channel, c)}
            try:
                await self._send_subscribe(sub, since)
            except KaizenError:
                return  # lost again: the next reconnect retries

    def _next_id(self) -> str:
        return str(next(self._ids))

    async def close(self) -> None:
        """Close the connection and stop reconnecting. Idempotent."""
        self.state = SocketState.CLOSED
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_pending(ConnectionLostError("socket closed"))
        for sub in list(self._subs.values()):
            sub._end()

    async def _request(self, frame: Any, reply_type: type[R]) -> R:
        """Send a frame and wait for its reply. Cancelling abandons the reply, not the request."""
        await self.connect()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[frame.id] = future
        try:
            assert self._ws is not None
            await self._ws.send_bytes(encode(frame, exclude_none=True))
            reply = await asyncio.wait_for(future, self._timeout)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise ConnectionLostError(f"send failed: {exc!r}") from exc
        except TimeoutError:
            raise TransportError(f"no reply within {self._timeout}s") from None
        finally:
            self._pending.pop(frame.id, None)
        if not isinstance(reply, reply_type):
            raise KaizenError(f"unexpected reply {type(reply).__name__}")
        return reply

    async def _wait_open(self) -> None:
        try:
            await asyncio.wait_for(self._opened.wait(), self._timeout)
        except TimeoutError:
            raise self._fatal or TransportError(f"could not connect to {self._url}") from None
        if self._fatal is not None:
            raise self._fatal

    async def _supervise(self) -> None:
        attempt = 0
        while self.state is not SocketState.CLOSED:
            try:
                await self._connect_once()
                attempt = 0
                if self._subs and self.connects > 1:
                    self._spawn(self._resubscribe())
                await self._read()
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (401, 403):
                    self._fatal = error_for("unauthorized", "token refused", {}, exc.status)
                    self._opened.set()
                    return
            except Exception:  # any broken connection or stray frame: start over
                pass
            self._lost()
            attempt += 1
            await asyncio.sleep(
                random.uniform(0, min(self._backoff[1], self._backoff[0] * 2**attempt))
            )

    async def _connect_once(self) -> None:
        self.state = SocketState.CONNECTING
        self._ws = await self._session.ws_connect(self._url, autoping=True, heartbeat=None)
        first = await self._ws.receive(timeout=self._timeout)
        try:
            hello = SERVER_FRAME.validate_json(first.data)
        except ValidationError:
            hello = None
        if not isinstance(hello, HelloFrame):
            raise TransportError("server did not say hello")
        self.hello = hello
        self.connects += 1
        self.state = SocketState.OPEN
        self._opened.set()

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            try:
                frame = SERVER_FRAME.validate_json(msg.data)
            except ValidationError as exc:
                self._unreadable(msg.data, exc)
                continue
            self._dispatch(frame)

    def _unreadable(self, data: str | bytes, exc: ValidationError) -> None:
        """A frame that does not validate. One whose `type` is unknown comes from a
        newer server and is skipped (docs/protocol.md §2); any other is counted
        and logged, never dropped silently, and a reply fails its request now, as
        `_request` fails a reply of the wrong type, rather than at the timeout."""
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        if all(e["type"] in _NEWER_TYPE and len(e["loc"]) == 0 for e in errors):
            return
        self.undecodable += 1
        head = _head(data)
        log.warning(
            "undecodable %s frame (id %s, channel %s, offset %s): %s",
            *(head.get(k) for k in ("type", "id", "channel", "offset")),
            errors[0]["msg"],
        )
        request_id = head.get("id")
        future = self._pending.get(request_id) if isinstance(request_id, str) else None
        if future is not None and not future.done():
            future.set_exception(KaizenError(f"undecodable reply: {errors[0]['msg']}"))

    def _spawn(self, chore: Any) -> None:
        task = asyncio.create_task(chore)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def _on_push(self, push: PushFrame) -> None:
        known = self.positions.get(push.channel)
        if known is not None and known.epoch == push.epoch and push.offset <= known.offset:
            return
        self.positions[push.channel] = StreamPosition(offset=push.offset, epoch=push.epoch)
        for sub in self._subs.values():
            if matches(sub.channel, push.channel) and sub.wants(push):
                sub._deliver(push)

    def _dispatch(self, frame: Any) -> None:
        if isinstance(frame, PushFrame):
            self._on_push(frame)
            return
        if isinstance(frame, LaggedFrame):
            for sub in self._subs.values():
                sub.lagged += frame.dropped
            return
        request_id = getattr(frame, "id", None)
        future = self._pending.get(request_id) if isinstance(request_id, str) else None
        if future is None or future.done():
            return
        if isinstance(frame, ErrorFrame):
            e = frame.error
            future.set_exception(error_for(e.code.value, e.message, e.details))
        else:
            future.set_result(frame)

    def _lost(self) -> None:
        if self.state is not SocketState.CLOSED:
            self.state = SocketState.CONNECTING
        self._opened.clear()
        self._fail_pending(
            ConnectionLostError("connection lost; the request may have been applied")
        )

    def _fail_pending(self, exc: KaizenError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()


def _head(data: str | bytes) -> dict[str, Any]:
    """What names an unreadable frame, read past pydantic's 200 levels where orjson
    can (1024); empty when even that fails."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
