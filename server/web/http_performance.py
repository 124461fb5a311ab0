"""HTTP routes of the performance optimizer."""

from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from schemas import RecordResult
from schemas.common import Name
from schemas.performance import (
    AgentComparison,
    AgentPerformance,
    Bottlenecks,
    BottlenecksQuery,
    CompareQuery,
    ExecutionBatch,
    ExecutionRequest,
    PerformanceQuery,
    PerformanceStats,
    Recommendations,
    RecommendationsQuery,
)
from server.web.bodies import path_text, read_body, read_query, reply
from server.web.context import principal, services
from server.web.route import Route

EXECUTIONS: TypeAdapter[Any] = TypeAdapter(ExecutionRequest)
AGENT: TypeAdapter[str] = TypeAdapter(Name)


async def record_executions(request: web.Request) -> web.Response:
    body = await read_body(request, EXECUTIONS)
    items = body.executions if isinstance(body, ExecutionBatch) else [body]
    result = await services(request).performance.record(principal(request).tenant, items)
    return reply(result, status=201)


async def agent_performance(request: web.Request) -> web.Response:
    query = read_query(request, PerformanceQuery)
    agent = path_text(request, "agent", AGENT, "agent type")
    found = await services(request).performance.agent(principal(request).tenant, agent, query)
    return reply(found)


async def compare_agents(request: web.Request) -> web.Response:
    query = read_query(request, CompareQuery)
    return reply(await services(request).performance.compare(principal(request).tenant, query))


async def recommendations(request: web.Request) -> web.Response:
    query = read_query(request, RecommendationsQuery)
    found = await services(request).performance.recommendations(principal(request).tenant, query)
    return reply(found)


async def bottlenecks(request: web.Request) -> web.Response:
    query = read_query(request, BottlenecksQuery)
    found = await services(request).performance.bottlenecks(principal(request).tenant, query)
    return reply(found)


async def performance_stats(request: web.Request) -> web.Response:
    return reply(await services(request).performance.stats(principal(request).tenant))


PERFORMANCE_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/executions",
        record_executions,
        "Record one execution or a batch (seed 003's record_execution)",
        body=ExecutionRequest,
        reply=RecordResult,
        status=201,
    ),
    Route(
        "GET",
        "/performance/agents/{agent}",
        agent_performance,
        "An agent type's success rate, p50/p95 time, iterations, trend and bottlenecks",
        query=PerformanceQuery,
        reply=AgentPerformance,
    ),
    Route(
        "GET",
        "/performance/compare",
        compare_agents,
        "Two agent types compared, with significance tests",
        query=CompareQuery,
        reply=AgentComparison,
    ),
    Route(
        "GET",
        "/performance/bottlenecks",
        bottlenecks,
        "Where agents are slow, iterate or fail against their peers",
        query=BottlenecksQuery,
        reply=Bottlenecks,
    ),
    Route(
        "GET",
        "/performance/stats",
        performance_stats,
        "Executions, agent types and categories recorded",
        reply=PerformanceStats,
    ),
    Route(
        "GET",
        "/recommendations",
        recommendations,
        "Typed recommendations, each with an expected improvement computed from the data",
        query=RecommendationsQuery,
        reply=Recommendations,
    ),
)
