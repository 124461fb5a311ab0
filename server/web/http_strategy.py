"""HTTP routes of the adaptive strategy system."""

from aiohttp import web
from pydantic import TypeAdapter

from schemas.strategy import (
    OutcomeReport,
    OutcomeResult,
    SelectRequest,
    StrategySelection,
    StrategyStatistics,
    TaskAnalysis,
    TaskDescription,
)
from server.web.bodies import path_id, read_body, reply
from server.web.context import principal, services
from server.web.route import Route

TASK = TypeAdapter(TaskDescription)
SELECT = TypeAdapter(SelectRequest)
OUTCOME = TypeAdapter(OutcomeReport)


async def analyze_task(request: web.Request) -> web.Response:
    body = await read_body(request, TASK)
    analysis = await services(request).strategy.analyze(principal(request).tenant, body)
    return reply(analysis, status=201)


async def select_strategy(request: web.Request) -> web.Response:
    body = await read_body(request, SELECT)
    selection = await services(request).strategy.select(principal(request).tenant, body)
    return reply(selection, status=201)


async def record_outcome(request: web.Request) -> web.Response:
    body = await read_body(request, OUTCOME)
    strategy = services(request).strategy
    result = await strategy.record_outcome(principal(request).tenant, path_id(request), body)
    return reply(result, status=201)


async def statistics(request: web.Request) -> web.Response:
    return reply(await services(request).strategy.statistics(principal(request).tenant))


STRATEGY_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/tasks/analyze",
        analyze_task,
        "Complexity, requirements, suggested agents and a duration estimate for a task",
        body=TaskDescription,
        reply=TaskAnalysis,
        status=201,
    ),
    Route(
        "POST",
        "/strategies/select",
        select_strategy,
        "An execution strategy and agent sequence, by Thompson sampling with back-off",
        body=SelectRequest,
        reply=StrategySelection,
        status=201,
    ),
    Route(
        "POST",
        r"/strategies/{id:\d+}/outcome",
        record_outcome,
        "The outcome of a selected strategy: updates its posteriors and the learnings",
        body=OutcomeReport,
        reply=OutcomeResult,
        status=201,
    ),
    Route(
        "GET",
        "/strategies/statistics",
        statistics,
        "Tasks analysed, learned patterns and the overall success rate",
        reply=StrategyStatistics,
    ),
)
