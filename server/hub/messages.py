"""Knowledge queries and engagement (query_knowledge, vote_useful,
mark_as_applied, get_popular_knowledge)."""

import re
from dataclasses import replace

import orjson

from schemas import Endorsement, Engagement, HubMessage, MessageQuery, Page, PopularQuery
from server.auth.service import Principal
from server.core.cursor import decode_cursor, encode_cursor
from server.core.errors import InvalidRequest, NotFound
from server.hub.channels import ChannelBook
from server.hub.popularity import popularity
from server.hub.store import HubStore, Search, StoredMessage

_WORD = re.compile(r"\w+")
_TAG = re.compile(r"^[^\s,]{1,64}$")
MAX_TAGS = 32


def fts_query(text: str) -> str:
    """The words of `text` as an FTS5 query matching any of them, each quoted so
    that no character of the user's text is read as FTS5 syntax; BM25 then ranks
    documents with more, and rarer, matching words first."""
    words = _WORD.findall(text.lower())[:64]
    if not words:
        raise InvalidRequest("the query has no words", query=text[:100])
    return " OR ".join(f'"{w}"' for w in words)


def split_tags(tags: str | None) -> list[str]:
    found = [t for t in (tags or "").split(",") if t]
    if len(found) > MAX_TAGS or not all(_TAG.match(t) for t in found):
        raise InvalidRequest("tags: up to 32 comma-separated tags without spaces", tags=tags)
    return found


class MessageService:
    def __init__(self, store: HubStore, channels: ChannelBook) -> None:
        self._store = store
        self._channels = channels

    async def query(self, tenant: str, q: MessageQuery) -> Page[HubMessage]:
        """Without `query`: newest first, keyset pages. With it: BM25 order, and
        pages are offsets into that order."""
        names = await self._names(tenant, q.channel)
        if names == []:
            return Page[HubMessage](items=[])
        search = Search(
            tenant=tenant,
            min_rank=q.min_priority.rank,
            channels=names,
            tags=split_tags(q.tags),
            kind=q.type.value if q.type else None,
            text=fts_query(q.query) if q.query else None,
            limit=q.limit + 1,
        )
        if search.text is None:
            return await self._newest(search, decode_cursor(q.cursor, "before", int))
        skip = decode_cursor(q.cursor, "skip", int) or 0
        rows = await self._store.search(replace(search, skip=skip))
        more = len(rows) > q.limit
        cursor = encode_cursor(skip=skip + q.limit) if more else None
        return Page[HubMessage](items=self._models(tenant, rows[: q.limit]), next_cursor=cursor)

    async def get(self, tenant: str, knowledge_id: int) -> HubMessage:
        """One message; reading it counts a view."""
        await self._existing(tenant, knowledge_id)
        await self._store.add_view(tenant, knowledge_id)
        found = self._models(tenant, [await self._existing(tenant, knowledge_id)])
        if not found:
            raise NotFound("no such knowledge", id=knowledge_id)
        return found[0]

    async def vote(
        self, caller: Principal, knowledge_id: int, endorsement: Endorsement
    ) -> Engagement:
        agent = endorsement.agent
        await self._existing(caller.tenant, knowledge_id)
        counted = await self._store.vote(caller.tenant, knowledge_id, _voter(caller, agent))
        return _engagement(await self._existing(caller.tenant, knowledge_id), counted)

    async def applied(self, caller: Principal, knowledge_id: int) -> Engagement:
        await self._existing(caller.tenant, knowledge_id)
        await self._store.add_application(caller.tenant, knowledge_id)
        return _engagement(await self._existing(caller.tenant, knowledge_id), True)

    async def popular(self, tenant: str, q: PopularQuery) -> Page[HubMessage]:
        """Most popular first: popularity = votes + 2 · applications."""
        names = await self._names(tenant, q.channel)
        if names == []:
            return Page[HubMessage](items=[])
        return Page[HubMessage](
            items=self._models(tenant, await self._store.popular(tenant, names, q.limit))
        )

    async def _newest(self, search: Search, before: int | None) -> Page[HubMessage]:
        rows = await self._store.search(replace(search, after_id=before))
        limit = search.limit - 1
        cursor = encode_cursor(before=rows[limit - 1].id) if len(rows) > limit else None
        return Page[HubMessage](items=self._models(search.tenant, rows[:limit]), next_cursor=cursor)

    async def _names(self, tenant: str, pattern: str | None) -> list[str] | None:
        if pattern is None:
            return None
        return [c.name for c in await self._channels.matching(tenant, pattern)]

    async def _existing(self, tenant: str, knowledge_id: int) -> StoredMessage:
        found = await self._store.get(tenant, knowledge_id)
        if found is None:
            raise NotFound("no such knowledge", id=knowledge_id)
        return found

    def _models(self, tenant: str, rows: list[StoredMessage]) -> list[HubMessage]:
        """Rows as models, with their channel's epoch; rows of a channel deleted
        meanwhile are left out."""
        models = []
        for r in rows:
            channel = self._channels.find(tenant, r.channel)
            if channel is not None:
                models.append(_knowledge(r, channel.epoch))
        return models


def _knowledge(r: StoredMessage, epoch: str) -> HubMessage:
    return HubMessage.model_validate(
        {
            **orjson.loads(r.body),
            "channel": r.channel,
            "offset": r.seq,
            "epoch": epoch,
            "votes": r.votes,
            "applications": r.applications,
            "views": r.views,
            "popularity": popularity(r.votes, r.applications),
        }
    )


def _voter(caller: Principal, agent: str | None) -> str:
    return agent or caller.agent or caller.token_id or "anonymous"


def _engagement(r: StoredMessage, counted: bool) -> Engagement:
    return Engagement(
        id=r.id, votes=r.votes, applications=r.applications, views=r.views, counted=counted
    )
