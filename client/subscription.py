"""A subscription to a channel or pattern: `async for push in sub`, or a callback.

Pushes arrive as `PushFrame`s (channel, offset, epoch and the message). After a
reconnect the socket resubscribes with the last offset seen on each channel, so
the server replays what was missed; duplicates are dropped by offset. When the
server cannot replay (history gone, or the channel was recreated), the channels
are added to `lost`, and `on_lost` is called: resync them with `query_knowledge`.
"""

import asyncio
import contextlib
import enum
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol

from schemas import PushFrame, Subscribed
from schemas import Subscription as SubscriptionRequest


class _Socket(Protocol):
    """What a subscription needs of its socket (`KaizenSocket`)."""

    async def subscribe(self, sub: "Subscription") -> None: ...
    async def unsubscribe(self, sub: "Subscription") -> None: ...


OnMessage = Callable[[PushFrame], Awaitable[None] | None]
OnLost = Callable[[list[str]], Awaitable[None] | None]


class SubscriptionState(enum.Enum):
    NEW = "new"
    ACTIVE = "active"
    CLOSED = "closed"


class Subscription:
    def __init__(
        self,
        socket: _Socket,
        request: SubscriptionRequest,
        on_message: OnMessage | None = None,
        on_lost: OnLost | None = None,
    ) -> None:
        self.request = request
        self.channel = request.channel
        self.state = SubscriptionState.NEW
        self.lost: list[str] = []
        """Channels whose missed messages could not be replayed."""
        self.lagged = 0
        """Pushes the server dropped because this connection fell behind."""
        self.last_reply: Subscribed | None = None
        self._socket = socket
        self._queue: asyncio.Queue[PushFrame | None] = asyncio.Queue()
        self._on_message = on_message
        self._on_lost = on_lost
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> Subscribed:
        """Subscribe (once). Safe to cancel: the subscription is then closed."""
        if self.state is SubscriptionState.NEW:
            self.state = SubscriptionState.ACTIVE
            try:
                await self._socket.subscribe(self)
            except BaseException:
                await self.close()
                raise
            if self._on_message is not None:
                self._pump = asyncio.create_task(self._run_callbacks())
        assert self.last_reply is not None
        return self.last_reply

    async def close(self) -> None:
        """Unsubscribe and end iteration. Idempotent."""
        if self.state is SubscriptionState.CLOSED:
            return
        was_active = self.state is SubscriptionState.ACTIVE
        self.state = SubscriptionState.CLOSED
        self._queue.put_nowait(None)
        if was_active:
            with contextlib.suppress(Exception):
                await self._socket.unsubscribe(self)
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def get(self) -> PushFrame:
        """The next push; raises StopAsyncIteration once closed. Safe to cancel."""
        await self.start()
        push = await self._queue.get()
        if push is None:
            self._queue.put_nowait(None)
            raise StopAsyncIteration
        return push

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> PushFrame:
        return await self.get()

    async def __aenter__(self) -> "Subscription":
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def wants(self, push: PushFrame) -> bool:
        r = self.request
        rank_ok = push.data.priority.rank >= r.min_priority.rank
        return rank_ok and (r.types is None or push.data.knowledge_type in r.types)

    def _end(self) -> None:
        """The socket closed for good: end iteration."""
        if self.state is not SubscriptionState.CLOSED:
            self.state = SubscriptionState.CLOSED
            self._queue.put_nowait(None)

    def _deliver(self, push: PushFrame) -> None:
        if self.state is SubscriptionState.ACTIVE:
            self._queue.put_nowait(push)

    def _replied(self, reply: Subscribed) -> None:
        self.last_reply = reply
        if reply.lost:
            self.lost.extend(reply.lost)
            if self._on_lost is not None:
                _call_soon(self._on_lost(list(reply.lost)))

    async def _run_callbacks(self) -> None:
        assert self._on_message is not None
        while (push := await self._queue.get()) is not None:
            result = self._on_message(push)
            if inspect.isawaitable(result):
                await result


_BACKGROUND: set["asyncio.Future[None]"] = set()


def _call_soon(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        future = asyncio.ensure_future(result)
        _BACKGROUND.add(future)
        future.add_done_callback(_BACKGROUND.discard)
