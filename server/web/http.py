"""HTTP routes. Each is declared once, as a `Route`, which also feeds /openapi.json."""

import asyncio
from typing import Any

from aiohttp import WSCloseCode, web
from pydantic import TypeAdapter

import server
from schemas import (
    AnomaliesQuery,
    Anomaly,
    Health,
    InteractionBatch,
    Learning,
    LearningsPage,
    LearningsQuery,
    ListQuery,
    Page,
    RecordRequest,
    RecordResult,
    Stats,
    StoredInteraction,
    TenantEffect,
    TokenCreate,
    TokenCreated,
    TokenInfo,
)
from server.web.bodies import path_id, read_body, read_query, reply, reply_json
from server.web.context import principal, services
from server.web.http_chat import SESSION_ROUTES
from server.web.http_hub import HUB_ROUTES
from server.web.http_kb import KB_ROUTES
from server.web.http_performance import PERFORMANCE_ROUTES
from server.web.http_strategy import STRATEGY_ROUTES
from server.web.http_training import TRAINING_ROUTES
from server.web.http_workflows import WORKFLOW_ROUTES
from server.web.openapi import openapi
from server.web.route import Route
from server.web.stats import collect_stats

RECORD_REQUEST: TypeAdapter[Any] = TypeAdapter(RecordRequest)
TOKEN_CREATE = TypeAdapter(TokenCreate)


async def healthz(request: web.Request) -> web.Response:
    return reply(Health(status="ok", version=server.__version__))


async def stats(request: web.Request) -> web.Response:
    return reply(await collect_stats(services(request), principal(request).tenant))


async def record(request: web.Request) -> web.Response:
    body = await read_body(request, RECORD_REQUEST)
    items = body.interactions if isinstance(body, InteractionBatch) else [body]
    result = await services(request).learning.record(principal(request).tenant, items)
    return reply(result, status=201)


async def list_interactions(request: web.Request) -> web.Response:
    query = read_query(request, ListQuery)
    page = await services(request).learning.list_interactions(
        principal(request).tenant, query.limit, query.cursor
    )
    return reply(page)


async def get_interaction(request: web.Request) -> web.Response:
    found = await services(request).learning.get_interaction(
        principal(request).tenant, path_id(request)
    )
    return reply(found)


async def learnings(request: web.Request) -> web.Response:
    query = read_query(request, LearningsQuery)
    return reply(await services(request).learning.learnings(principal(request).tenant, query))


async def learning_effect(request: web.Request) -> web.Response:
    return reply(await services(request).learning.effect(principal(request).tenant))


async def anomalies(request: web.Request) -> web.Response:
    query = read_query(request, AnomaliesQuery)
    return reply(await services(request).learning.anomalies(principal(request).tenant, query))


async def get_learning(request: web.Request) -> web.Response:
    found = await services(request).learning.get_learning(
        principal(request).tenant, path_id(request)
    )
    return reply(found)


async def create_token(request: web.Request) -> web.Response:
    body = await read_body(request, TOKEN_CREATE)
    created = await services(request).auth.create(principal(request), body.agent, body.tenant)
    return reply(created, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    query = read_query(request, ListQuery)
    return reply(await services(request).auth.list(principal(request), query.limit, query.cursor))


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke, and close the token's open sockets with 1008 (policy violation):
    their handshake was the only time the token was checked."""
    svc, token_id = services(request), request.match_info["token_id"]
    await svc.auth.revoke(principal(request), token_id)
    revoked = [c for c in svc.sockets if c.caller.token_id == token_id]
    await asyncio.gather(
        *(c.close(WSCloseCode.POLICY_VIOLATION, b"token revoked") for c in revoked)
    )
    return web.Response(status=204)


async def openapi_json(request: web.Request) -> web.Response:
    return reply_json(openapi(ALL_ROUTES, server.__version__))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", healthz, "Liveness", reply=Health, public=True),
    Route("GET", "/stats", stats, "Uptime, counts, queue depths, extractor lag", reply=Stats),
    Route("GET", "/openapi.json", openapi_json, "This document", public=True),
    Route(
        "POST",
        "/interactions",
        record,
        "Record one interaction or a batch",
        body=RecordRequest,
        reply=RecordResult,
        status=201,
    ),
    Route(
        "GET",
        "/interactions",
        list_interactions,
        "List interactions, oldest first",
        query=ListQuery,
        reply=Page[StoredInteraction],
    ),
    Route(
        "GET",
        r"/interactions/{id:\d+}",
        get_interaction,
        "One interaction",
        reply=StoredInteraction,
    ),
    Route(
        "GET",
        "/learnings",
        learnings,
        "Learnings ranked by relevance x confidence x recency, with the parts of each score",
        query=LearningsQuery,
        reply=LearningsPage,
    ),
    Route(
        "GET",
        "/learnings/effect",
        learning_effect,
        "The tenant's measured lift: attempts offered learnings against attempts held out",
        reply=TenantEffect,
    ),
    Route("GET", r"/learnings/{id:\d+}", get_learning, "One learning", reply=Learning),
    Route(
        "GET",
        "/anomalies",
        anomalies,
        "Interactions unusual for their agent type, newest first",
        query=AnomaliesQuery,
        reply=Page[Anomaly],
    ),
    Route(
        "POST",
        "/tokens",
        create_token,
        "Create a token",
        body=TokenCreate,
        reply=TokenCreated,
        status=201,
    ),
    Route(
        "GET",
        "/tokens",
        list_tokens,
        "List the tenant's tokens",
        query=ListQuery,
        reply=Page[TokenInfo],
    ),
    Route("DELETE", "/tokens/{token_id}", revoke_token, "Revoke a token", status=204),
)


ALL_ROUTES = (
    ROUTES
    + HUB_ROUTES
    + KB_ROUTES
    + STRATEGY_ROUTES
    + PERFORMANCE_ROUTES
    + WORKFLOW_ROUTES
    + SESSION_ROUTES
    + TRAINING_ROUTES
)


def add_routes(app: web.Application) -> None:
    for route in ALL_ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
