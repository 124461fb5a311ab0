"""HTTP routes of the session tracker and conversation memory."""

from aiohttp import web
from pydantic import TypeAdapter

from schemas.chat import (
    ChatMessage,
    MemoryHits,
    MemoryQuery,
    MessageAdded,
    SessionInfo,
    SessionKey,
    SessionStart,
    SessionStats,
)
from server.web.bodies import path_text, read_body, read_query, reply
from server.web.context import principal, services
from server.web.route import Route

START = TypeAdapter(SessionStart)
MESSAGE = TypeAdapter(ChatMessage)
KEY: TypeAdapter[str] = TypeAdapter(SessionKey)


def session_id(request: web.Request) -> str:
    return path_text(request, "sid", KEY, "session")


async def start_session(request: web.Request) -> web.Response:
    body = await read_body(request, START) if request.can_read_body else SessionStart()
    caller = principal(request)
    agent = caller.agent or "anonymous"
    info = await services(request).sessions.start_session(caller.tenant, agent, body)
    return reply(info, status=201)


async def add_message(request: web.Request) -> web.Response:
    body = await read_body(request, MESSAGE)
    added = await services(request).sessions.add_message(
        principal(request).tenant, session_id(request), body
    )
    return reply(added, status=201)


async def end_session(request: web.Request) -> web.Response:
    info = await services(request).sessions.end(principal(request).tenant, session_id(request))
    return reply(info)


async def get_session(request: web.Request) -> web.Response:
    info = await services(request).sessions.get(principal(request).tenant, session_id(request))
    return reply(info)


async def search_memory(request: web.Request) -> web.Response:
    query = read_query(request, MemoryQuery)
    return reply(await services(request).sessions.search(principal(request).tenant, query))


async def session_stats(request: web.Request) -> web.Response:
    return reply(await services(request).sessions.stats(principal(request).tenant))


SESSION_ROUTES: tuple[Route, ...] = (
    Route(
        "GET", "/sessions/stats", session_stats, "Seeds 000/001's statistics", reply=SessionStats
    ),
    Route(
        "POST",
        "/sessions",
        start_session,
        "Start a chat session",
        body=SessionStart,
        reply=SessionInfo,
        status=201,
    ),
    Route(
        "POST",
        "/sessions/{sid}/messages",
        add_message,
        "Add a message to an open session",
        body=ChatMessage,
        reply=MessageAdded,
        status=201,
    ),
    Route(
        "POST",
        "/sessions/{sid}/end",
        end_session,
        "End a session; its processing is queued",
        reply=SessionInfo,
    ),
    Route(
        "GET",
        "/sessions/{sid}",
        get_session,
        "A session, with its pipeline report once processed",
        reply=SessionInfo,
    ),
    Route(
        "GET",
        "/memory/search",
        search_memory,
        "Conversation memory searched by meaning",
        query=MemoryQuery,
        reply=MemoryHits,
    ),
)
