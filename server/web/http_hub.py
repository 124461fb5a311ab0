"""HTTP routes of the knowledge hub: publish, query, engagement and channels."""

from aiohttp import web
from pydantic import TypeAdapter

from schemas import (
    ChannelCreate,
    ChannelInfo,
    DiscoveryDraft,
    Endorsement,
    Engagement,
    Knowledge,
    KnowledgeDraft,
    KnowledgeQuery,
    Page,
    PopularQuery,
    Published,
    SolutionDraft,
)
from server.web.bodies import decode, path_id, read_body, read_query, reply
from server.web.context import principal, services
from server.web.route import Route

DRAFT = TypeAdapter(KnowledgeDraft)
SOLUTION = TypeAdapter(SolutionDraft)
DISCOVERY = TypeAdapter(DiscoveryDraft)
ENDORSEMENT = TypeAdapter(Endorsement)
CHANNEL_CREATE = TypeAdapter(ChannelCreate)


async def publish(request: web.Request) -> web.Response:
    draft = await read_body(request, DRAFT)
    published = await services(request).hub.publish(principal(request), draft)
    return reply(published, status=201)


async def share_solution(request: web.Request) -> web.Response:
    draft = await read_body(request, SOLUTION)
    published = await services(request).hub.share_solution(principal(request), draft)
    return reply(published, status=201)


async def broadcast_discovery(request: web.Request) -> web.Response:
    draft = await read_body(request, DISCOVERY)
    published = await services(request).hub.broadcast_discovery(principal(request), draft)
    return reply(published, status=201)


async def query_knowledge(request: web.Request) -> web.Response:
    query = read_query(request, KnowledgeQuery)
    return reply(await services(request).knowledge.query(principal(request).tenant, query))


async def popular(request: web.Request) -> web.Response:
    query = read_query(request, PopularQuery)
    return reply(await services(request).knowledge.popular(principal(request).tenant, query))


async def get_knowledge(request: web.Request) -> web.Response:
    knowledge = services(request).knowledge
    return reply(await knowledge.get(principal(request).tenant, path_id(request)))


async def _endorsement(request: web.Request) -> Endorsement:
    """The optional body of a vote or an application."""
    raw = await request.read()
    return decode(raw, ENDORSEMENT) if raw.strip() else Endorsement()


async def vote(request: web.Request) -> web.Response:
    body = await _endorsement(request)
    knowledge = services(request).knowledge
    return reply(await knowledge.vote(principal(request), path_id(request), body.agent))


async def applied(request: web.Request) -> web.Response:
    await _endorsement(request)
    knowledge = services(request).knowledge
    return reply(await knowledge.applied(principal(request), path_id(request)))


async def list_channels(request: web.Request) -> web.Response:
    return reply(await services(request).hub.list_channels(principal(request).tenant))


async def get_channel(request: web.Request) -> web.Response:
    hub, name = services(request).hub, request.match_info["name"]
    return reply((await hub.channels.get(principal(request).tenant, name)).info())


async def create_channel(request: web.Request) -> web.Response:
    body = await read_body(request, CHANNEL_CREATE)
    created = await services(request).hub.create_channel(principal(request).tenant, body.name)
    return reply(created, status=201)


async def delete_channel(request: web.Request) -> web.Response:
    hub, name = services(request).hub, request.match_info["name"]
    await hub.delete_channel(principal(request).tenant, name)
    return web.Response(status=204)


_ID = r"{id:\d+}"
_NAME = r"{name:[a-z0-9_.-]{1,128}}"

HUB_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/knowledge",
        publish,
        "Publish knowledge on a channel (share_knowledge)",
        body=KnowledgeDraft,
        reply=Published,
        status=201,
    ),
    Route(
        "POST",
        "/knowledge/solutions",
        share_solution,
        "Publish a solution to `solutions` (share_solution)",
        body=SolutionDraft,
        reply=Published,
        status=201,
    ),
    Route(
        "POST",
        "/knowledge/discoveries",
        broadcast_discovery,
        "Publish a HIGH discovery to `general` (broadcast_discovery)",
        body=DiscoveryDraft,
        reply=Published,
        status=201,
    ),
    Route(
        "GET",
        "/knowledge",
        query_knowledge,
        "Search knowledge (BM25 with `query`, else newest first)",
        query=KnowledgeQuery,
        reply=Page[Knowledge],
    ),
    Route(
        "GET",
        "/knowledge/popular",
        popular,
        "Most popular knowledge: votes + 2 x applications",
        query=PopularQuery,
        reply=Page[Knowledge],
    ),
    Route("GET", f"/knowledge/{_ID}", get_knowledge, "One message; counts a view", reply=Knowledge),
    Route(
        "POST",
        f"/knowledge/{_ID}/vote",
        vote,
        "Vote a message useful (once per agent)",
        body=Endorsement,
        reply=Engagement,
    ),
    Route(
        "POST",
        f"/knowledge/{_ID}/applied",
        applied,
        "Mark a message as applied",
        body=Endorsement,
        reply=Engagement,
    ),
    Route("GET", "/channels", list_channels, "The tenant's channels", reply=Page[ChannelInfo]),
    Route(
        "POST",
        "/channels",
        create_channel,
        "Create a channel",
        body=ChannelCreate,
        reply=ChannelInfo,
        status=201,
    ),
    Route("GET", f"/channels/{_NAME}", get_channel, "One channel", reply=ChannelInfo),
    Route("DELETE", f"/channels/{_NAME}", delete_channel, "Delete a channel", status=204),
)
