"""The knowledge hub: publish, subscribe with recovery, retention.

Publish: the channel's next offset is assigned when the write takes its place in
the queue; after the commit the message is encoded once, as a WebSocket frame, and
fanned out (server/hub/fanout.py). The publisher's ack carries the offset.

Subscribe with `since`: attach to live delivery first, holding live messages in a
buffer; replay history from the store up to the offset committed at attach time;
then release the buffer (whose offsets all lie past that point) and go live. No
gap, no duplicate (docs/protocol.md, "Recovery").
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import orjson

from schemas import (
    ChannelInfo,
    DiscoveryDraft,
    HubStats,
    KnowledgeType,
    MessageDraft,
    Page,
    Priority,
    Published,
    SolutionDraft,
    StreamPosition,
    Subscribed,
    Subscription,
)
from server.auth.service import Principal
from server.core.clock import utc
from server.core.errors import InvalidRequest, NotFound, PayloadTooLarge, RateLimited
from server.core.settings import Settings
from server.hub.channels import Channel, ChannelBook
from server.hub.fanout import Fanout
from server.hub.names import channel_for
from server.hub.outbox import CONTROL, Outbox
from server.hub.ratelimit import TokenBucket
from server.hub.recovery import after_replay, recoverable
from server.hub.store import HubStore, MessageRecord
from server.hub.subscriptions import Delivery, Peer, Sink, Sub
from server.hub.wsframe import push_json, text_frame

log = logging.getLogger("kaizen.hub")

REPLAY_CHUNK = 256
DRAIN_POLL_S = 0.01


class HubService:
    def __init__(self, store: HubStore, settings: Settings, clock: Callable[[], float]) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.channels = ChannelBook(store, clock, settings.hub_max_channels)
        self.fanout = Fanout(settings.hub_write_delay_s, settings.hub_transport_high_water)
        self.published = 0
        self._buckets: dict[tuple[str, str | None], TokenBucket] = {}
        self._pruner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the channels and start the pruner. Not safe to cancel."""
        await self.channels.load()
        self._pruner = asyncio.create_task(self._prune_forever(), name="kaizen-hub-pruner")

    async def stop(self) -> None:
        """Stop the pruner. Idempotent."""
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None

    def stats(self, tenant: str) -> HubStats:
        """The tenant's channel count; the other figures are the server's."""
        f = self.fanout.stats
        return HubStats(
            channels=len(self.channels.mine(tenant)),
            subscriptions=self.fanout.registry.count(),
            published=self.published,
            delivered=f.delivered,
            dropped=f.dropped,
            slow_closed=f.slow_closed,
        )

    # -- publish ---------------------------------------------------------------

    async def publish(self, caller: Principal, draft: MessageDraft) -> Published:
        """Store the message, then deliver it. Returns after the commit. Cancelling
        leaves its fate unknown."""
        self._take_token(caller)
        source = draft.source_agent or caller.agent or "anonymous"
        return await self._publish(caller.tenant, source, draft)

    async def announce(self, tenant: str, draft: MessageDraft) -> Published:
        """Publish on the server's own behalf (anomaly alerts), outside any token's
        rate limit. Returns after the commit; cancelling leaves its fate unknown."""
        return await self._publish(tenant, draft.source_agent or "kaizen", draft)

    def publish_soon(
        self, caller: Principal, draft: MessageDraft, on_published: Callable[[Published], None]
    ) -> asyncio.Future[None] | None:
        """`publish` without awaiting anything, when that can be done now: the
        channel is known and the write queue has room. The message is queued at
        once; after its commit and fan-out, `on_published` is called in the commit
        hook (keep it short), then the returned future resolves (with the commit's
        error if it failed). Returns None, having done nothing, when the caller must
        use `publish` instead. Raises, having queued nothing, what `publish` raises
        for the rate limit and the size. This is the WebSocket's path: no task and
        no coroutine per message."""
        name = draft.channel or channel_for(draft.knowledge_type)
        channel = self.channels.find(caller.tenant, name)
        if channel is None or not self.store.has_room():
            return None
        self._take_token(caller)
        source = draft.source_agent or caller.agent or "anonymous"

        def committed(record: MessageRecord) -> None:
            try:
                self._committed(channel, record)
            finally:  # committed is committed: the publisher hears of it regardless
                on_published(self._published(channel, record))

        return self.store.append_soon(self._numbering(channel, source, draft), committed)

    async def _publish(self, tenant: str, source: str, draft: MessageDraft) -> Published:
        channel = await self.channels.get(
            tenant, draft.channel or channel_for(draft.knowledge_type)
        )
        record = await self.store.append(
            self._numbering(channel, source, draft),
            lambda committed: self._committed(channel, committed),
        )
        return self._published(channel, record)

    def _numbering(
        self, channel: Channel, source: str, draft: MessageDraft
    ) -> Callable[[int], MessageRecord]:
        """Encode the message now (raising if it is too large); number it when its
        write takes its place in the queue."""
        rest, created = self._encode(source, draft)
        return lambda knowledge_id: self._number(
            channel, draft, source, knowledge_id, rest, created
        )

    def _published(self, channel: Channel, record: MessageRecord) -> Published:
        self.published += 1
        return Published(id=record.id, channel=channel.name, offset=record.seq, epoch=channel.epoch)

    async def share_solution(self, caller: Principal, draft: SolutionDraft) -> Published:
        """share_solution: see `solution_message`."""
        return await self.publish(caller, solution_message(draft))

    async def broadcast_discovery(self, caller: Principal, draft: DiscoveryDraft) -> Published:
        """broadcast_discovery: see `discovery_message`."""
        return await self.publish(caller, discovery_message(draft))

    def _take_token(self, caller: Principal) -> None:
        key = (caller.tenant, caller.token_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            s = self.settings
            bucket = TokenBucket(s.hub_publish_rate, s.hub_publish_burst, self.clock)
            self._buckets[key] = bucket
        wait = bucket.take()
        if wait:
            retry = math.ceil(wait * 1000) / 1000  # rounded up: waiting that long is enough
            raise RateLimited("publish rate limit", retry_after_s=retry)

    def _encode(self, source: str, draft: MessageDraft) -> tuple[bytes, float]:
        """The message's encoding minus its id (assigned later), checked for size."""
        now = self.clock()
        fields: dict[str, Any] = {
            "source_agent": source,
            "knowledge_type": draft.knowledge_type,
            "title": draft.title,
            "content": draft.content,
            "context": draft.context,
            "priority": draft.priority,
            "tags": draft.tags,
            "created_at": utc(now),
        }
        rest = orjson.dumps(fields)
        limit = self.settings.hub_max_message_bytes
        if len(rest) + 32 > limit:
            raise PayloadTooLarge("message too large", max_message_bytes=limit)
        return rest, now

    def _number(
        self,
        channel: Channel,
        draft: MessageDraft,
        source: str,
        knowledge_id: int,
        rest: bytes,
        now: float,
    ) -> MessageRecord:
        channel.tip += 1
        body = b'{"id":' + str(knowledge_id).encode() + b"," + rest[1:]
        return MessageRecord(
            id=knowledge_id,
            tenant=channel.tenant,
            channel=channel.name,
            seq=channel.tip,
            rank=draft.priority.rank,
            kind=draft.knowledge_type.value,
            source_agent=source,
            tags=draft.tags,
            title=draft.title,
            content=draft.content,
            created_at=now,
            body=body,
        )

    def _committed(self, channel: Channel, r: MessageRecord) -> None:
        channel.committed = max(channel.committed, r.seq)
        frame = text_frame(push_json(channel.name, r.seq, channel.epoch, r.body))
        self.fanout.deliver(r.tenant, Delivery(r.channel, r.seq, r.rank, r.kind, frame))

    # -- channels --------------------------------------------------------------

    async def list_channels(self, tenant: str) -> Page[ChannelInfo]:
        book = await self.channels.of(tenant)
        return Page[ChannelInfo](items=[book[name].info() for name in sorted(book)])

    async def get_channel(self, tenant: str, name: str) -> ChannelInfo:
        return (await self.channels.get(tenant, name)).info()

    async def create_channel(self, tenant: str, name: str) -> ChannelInfo:
        return (await self.channels.create(tenant, name)).info()

    async def delete_channel(self, tenant: str, name: str) -> ChannelInfo:
        """Delete a channel and its history; created again, it gets a new epoch."""
        return (await self.channels.delete(tenant, name)).info()

    # -- subscribe -------------------------------------------------------------

    def attach(self, tenant: str, sink: Sink) -> Peer:
        s = self.settings
        return Peer(tenant, sink, Outbox(s.hub_outbox_bytes, s.hub_max_drops))

    def detach(self, peer: Peer) -> None:
        for sub in peer.subs.values():
            self.fanout.registry.remove(sub)
        peer.subs.clear()
        self.fanout.forget(peer)

    async def subscribe(
        self, peer: Peer, request: Subscription, reply: Callable[[Subscribed], bytes]
    ) -> None:
        """Subscribe, queue the reply (encoded by `reply`) ahead of any replayed or
        live push, then replay what `since` missed. Cancelling leaves the
        subscription live without the rest of the replay."""
        channels = await self.channels.matching(peer.tenant, request.channel)
        if (
            request.channel not in peer.subs
            and len(peer.subs) >= self.settings.hub_max_subscriptions
        ):
            raise InvalidRequest(
                "too many subscriptions", max_subscriptions=self.settings.hub_max_subscriptions
            )
        sub = self._add(peer, request)
        tips = {c.name: c.committed for c in channels}
        positions = {c.name: StreamPosition(offset=c.committed, epoch=c.epoch) for c in channels}
        if request.since is None:
            self.fanout.push(peer, reply(_subscribed(request, [], 0, positions)), CONTROL)
            return
        plan = [(c, request.since.get(c.name), tips[c.name]) for c in channels]
        lost = [c.name for c, pos, tip in plan if pos and not await self._recoverable(c, pos, tip)]
        size = self.settings.hub_history_size
        replaying = sum(
            tip - max(pos.offset if pos else 0, tip - size, 0)
            for c, pos, tip in plan
            if c.name not in lost
        )
        self.fanout.push(peer, reply(_subscribed(request, lost, replaying, positions)), CONTROL)
        for channel, pos, tip in plan:
            if channel.name not in lost:
                await self._replay(sub, channel, pos.offset if pos else 0, tip)
        self._go_live(sub, tips)

    def unsubscribe(self, peer: Peer, pattern: str) -> None:
        sub = peer.subs.pop(pattern, None)
        if sub is None:
            raise NotFound("not subscribed", channel=pattern)
        self.fanout.registry.remove(sub)

    def _add(self, peer: Peer, request: Subscription) -> Sub:
        old = peer.subs.pop(request.channel, None)
        if old is not None:
            self.fanout.registry.remove(old)
        kinds = frozenset(t.value for t in request.types) if request.types else None
        buffer: list[Delivery] | None = [] if request.since is not None else None
        sub = Sub(peer, request.channel, request.min_priority.rank, kinds, buffer)
        peer.subs[request.channel] = sub
        self.fanout.registry.add(sub)
        return sub

    async def _recoverable(self, channel: Channel, pos: StreamPosition, tip: int) -> bool:
        same_epoch = pos.epoch == channel.epoch
        first = None
        if same_epoch and pos.offset < tip:
            rows = await self._history(channel, pos.offset, tip, 1)
            first = rows[0][0] if rows else None
        return recoverable(pos.offset, same_epoch, tip, first, self.settings.hub_history_size)

    async def _history(
        self, channel: Channel, after: int, tip: int, limit: int
    ) -> list[tuple[int, int, str, bytes]]:
        floor = max(after, tip - self.settings.hub_history_size)
        oldest = self.clock() - self.settings.hub_history_ttl_s
        return await self.store.history(channel.tenant, channel.name, floor, tip, oldest, limit)

    async def _replay(self, sub: Sub, channel: Channel, after: int, tip: int) -> None:
        """Queue the stored messages `after … tip` that `sub` wants, a chunk at a
        time, letting the socket drain between chunks."""
        while after < tip and not sub.peer.sink.closing():
            rows = await self._history(channel, after, tip, REPLAY_CHUNK)
            if not rows:
                return
            for seq, rank, kind, body in rows:
                if sub.wants(rank, kind):
                    frame = text_frame(push_json(channel.name, seq, channel.epoch, body))
                    self.fanout.push(sub.peer, frame, rank)
            after = rows[-1][0]
            await self._drained(sub.peer)

    async def _drained(self, peer: Peer) -> None:
        while len(peer.outbox) > peer.outbox.max_bytes // 2 and not peer.sink.closing():
            await asyncio.sleep(DRAIN_POLL_S)

    def _go_live(self, sub: Sub, tips: dict[str, int]) -> None:
        held, sub.buffer = sub.buffer or [], None
        for i in after_replay([(d.channel, d.offset) for d in held], tips):
            self.fanout.push(sub.peer, held[i].frame, held[i].rank)

    # -- retention -------------------------------------------------------------

    async def prune(self) -> None:
        """Delete history past each channel's size, and everything past the TTL."""
        size = self.settings.hub_history_size
        cuts = [
            (c.tenant, c.name, c.committed - size)
            for c in self.channels.all()
            if c.committed - size > c.pruned
        ]
        cuts += await self.store.expired(self.clock() - self.settings.hub_history_ttl_s)
        if cuts:
            await self.store.prune(cuts)
        for tenant, name, seq in cuts:
            if (channel := self.channels.find(tenant, name)) is not None:
                channel.pruned = max(channel.pruned, seq)

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.hub_prune_interval_s)
            try:
                await self.prune()
            except Exception:
                log.exception("pruning the hub's history failed")


def solution_message(draft: SolutionDraft) -> MessageDraft:
    """share_solution: the problem is the title, the solution the content,
    on `solutions`."""
    return MessageDraft(
        knowledge_type=KnowledgeType.SOLUTION,
        title=draft.problem,
        content=draft.solution,
        context=draft.context,
        priority=draft.priority,
        tags=draft.tags,
        channel="solutions",
        source_agent=draft.source_agent,
    )


def discovery_message(draft: DiscoveryDraft) -> MessageDraft:
    """broadcast_discovery: to `general`, at HIGH priority."""
    return MessageDraft(
        knowledge_type=KnowledgeType.DISCOVERY,
        title=draft.title,
        content=draft.content,
        context=draft.context,
        priority=Priority.HIGH,
        tags=draft.tags,
        channel="general",
        source_agent=draft.source_agent,
    )


def _subscribed(
    request: Subscription, lost: list[str], replaying: int, positions: dict[str, StreamPosition]
) -> Subscribed:
    return Subscribed(
        channel=request.channel,
        recovered=not lost,
        lost=lost,
        replaying=replaying,
        positions=positions,
    )
