"""The knowledge hub's SDK methods (share_knowledge, share_solution,
subscribe_to_channel, query_knowledge, broadcast_discovery, vote_useful,
mark_as_applied, get_popular_knowledge), mixed into `KaizenClient`."""

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel

from client._build import local
from client._http import call
from client._ops import operation
from client.socket import KaizenSocket
from client.subscription import OnLost, OnMessage, Subscription
from schemas import (
    ChannelCreate,
    ChannelInfo,
    DiscoveryDraft,
    Endorsement,
    Engagement,
    HubMessage,
    KnowledgeType,
    MessageDraft,
    MessageQuery,
    Page,
    PopularQuery,
    Priority,
    Published,
    SolutionDraft,
    encode,
)
from schemas import Subscription as SubscriptionRequest

M = TypeVar("M", bound=BaseModel)


class HubMethods:
    """Needs `_call`, `http` and `socket` from the client it is mixed into."""

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    @property
    def socket(self) -> KaizenSocket:
        raise NotImplementedError

    @property
    def http(self) -> aiohttp.ClientSession:
        raise NotImplementedError

    @operation("publish")
    async def share_knowledge(
        self,
        *,
        knowledge_type: KnowledgeType | str,
        title: str,
        content: str = "",
        context: dict[str, Any] | None = None,
        priority: Priority | str = Priority.MEDIUM,
        tags: Iterable[str] = (),
        channel: str | None = None,
        source_agent: str | None = None,
    ) -> Published:
        """Publish; returns once stored, with the message's channel offset."""
        draft = local(
            MessageDraft,
            knowledge_type=KnowledgeType(knowledge_type),
            title=title,
            content=content,
            context=context or {},
            priority=Priority(priority),
            tags=sorted(set(tags)),
            channel=channel,
            source_agent=source_agent,
        )
        return await self._publish("/knowledge", draft)

    @operation("share_solution")
    async def share_solution(
        self,
        problem: str,
        solution: str,
        context: dict[str, Any] | None = None,
        *,
        tags: Iterable[str] = (),
        priority: Priority | str = Priority.MEDIUM,
        source_agent: str | None = None,
    ) -> Published:
        draft = local(
            SolutionDraft,
            problem=problem,
            solution=solution,
            context=context or {},
            tags=sorted(set(tags)),
            priority=Priority(priority),
            source_agent=source_agent,
        )
        return await self._publish("/knowledge/solutions", draft)

    @operation("broadcast_discovery")
    async def broadcast_discovery(
        self,
        title: str,
        content: str = "",
        *,
        context: dict[str, Any] | None = None,
        tags: Iterable[str] = (),
        source_agent: str | None = None,
    ) -> Published:
        """Publish to `general` at HIGH priority."""
        draft = local(
            DiscoveryDraft,
            title=title,
            content=content,
            context=context or {},
            tags=sorted(set(tags)),
            source_agent=source_agent,
        )
        return await self._publish("/knowledge/discoveries", draft)

    @operation("subscribe")
    def subscribe(
        self,
        channel: str,
        *,
        min_priority: Priority | str = Priority.LOW,
        types: Sequence[KnowledgeType | str] | None = None,
        on_message: OnMessage | None = None,
        on_lost: OnLost | None = None,
    ) -> Subscription:
        """A subscription over the WebSocket, started by `async for`, `async with`
        or `await sub.start()`; with `on_message`, each push is also handed to it,
        in order. Recovery after reconnects needs nothing from the caller."""
        request = local(
            SubscriptionRequest,
            channel=channel,
            min_priority=Priority(min_priority),
            types=[KnowledgeType(t) for t in types] if types is not None else None,
        )
        return Subscription(self.socket, request, on_message, on_lost)

    @operation("subscribe")
    async def subscribe_to_channel(
        self, channel: str, *, min_priority: Priority | str = Priority.LOW
    ) -> Subscription:
        """The subscribe_to_channel: a started subscription."""
        sub = self.subscribe(channel, min_priority=min_priority)
        await sub.start()
        return sub

    @operation("query_knowledge")
    async def query_knowledge(
        self,
        query: str | None = None,
        *,
        min_priority: Priority | str = Priority.LOW,
        type: KnowledgeType | str | None = None,
        tags: Iterable[str] = (),
        channel: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[HubMessage]:
        q = local(
            MessageQuery,
            query=query,
            min_priority=min_priority,
            type=type,
            tags=",".join(tags) or None,
            channel=channel,
            limit=limit,
            cursor=cursor,
        )
        params = q.model_dump(mode="json", exclude_none=True)
        return await self._call("GET", "/knowledge", Page[HubMessage], params=params)

    @operation("get_knowledge")
    async def get_knowledge(self, knowledge_id: int) -> HubMessage:
        return await self._call("GET", f"/knowledge/{knowledge_id}", HubMessage)

    @operation("vote")
    async def vote_useful(self, knowledge_id: int, agent: str | None = None) -> Engagement:
        """One vote per agent: a second one is not counted (`counted` is False)."""
        body = encode(local(Endorsement, agent=agent), exclude_none=True)
        return await self._call("POST", f"/knowledge/{knowledge_id}/vote", Engagement, body=body)

    @operation("applied")
    async def mark_as_applied(self, knowledge_id: int, agent: str | None = None) -> Engagement:
        body = encode(local(Endorsement, agent=agent), exclude_none=True)
        path = f"/knowledge/{knowledge_id}/applied"
        return await self._call("POST", path, Engagement, body=body)

    @operation("popular")
    async def get_popular_knowledge(
        self, limit: int = 10, *, channel: str | None = None
    ) -> list[HubMessage]:
        q = local(PopularQuery, limit=limit, channel=channel)
        params = q.model_dump(mode="json", exclude_none=True)
        page = await self._call("GET", "/knowledge/popular", Page[HubMessage], params=params)
        return page.items

    @operation("channels")
    async def channels(self) -> list[ChannelInfo]:
        return (await self._call("GET", "/channels", Page[ChannelInfo])).items

    @operation("create_channel")
    async def create_channel(self, name: str) -> ChannelInfo:
        body = encode(local(ChannelCreate, name=name))
        return await self._call("POST", "/channels", ChannelInfo, body=body)

    @operation("get_channel")
    async def get_channel(self, name: str) -> ChannelInfo:
        return await self._call("GET", f"/channels/{name}", ChannelInfo)

    @operation("delete_channel")
    async def delete_channel(self, name: str) -> None:
        await call(self.http, "DELETE", f"/channels/{name}", None)

    async def _publish(self, path: str, draft: BaseModel) -> Published:
        body = encode(draft, exclude_none=True)
        return await self._call("POST", path, Published, body=body)
