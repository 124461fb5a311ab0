"""HTTP routes of the workflow learner."""

from aiohttp import web
from pydantic import TypeAdapter

from schemas.workflows import (
    EventBatch,
    EventsAccepted,
    NextCommands,
    NextQuery,
    OutcomeAccepted,
    SessionOutcome,
    Workflows,
    WorkflowsQuery,
    WorkflowStatsOut,
)
from server.web.bodies import read_body, read_query, reply
from server.web.context import principal, services
from server.web.route import Route

EVENTS = TypeAdapter(EventBatch)
OUTCOME = TypeAdapter(SessionOutcome)


async def ingest_events(request: web.Request) -> web.Response:
    batch = await read_body(request, EVENTS)
    accepted = await services(request).workflows.ingest(principal(request).tenant, batch)
    return reply(accepted, status=201)


async def list_workflows(request: web.Request) -> web.Response:
    query = read_query(request, WorkflowsQuery)
    return reply(services(request).workflows.workflows(principal(request).tenant, query))


async def next_commands(request: web.Request) -> web.Response:
    query = read_query(request, NextQuery)
    return reply(services(request).workflows.next_commands(principal(request).tenant, query))


async def report_outcome(request: web.Request) -> web.Response:
    body = await read_body(request, OUTCOME)
    return reply(services(request).workflows.report_outcome(principal(request).tenant, body))


async def workflow_stats(request: web.Request) -> web.Response:
    return reply(services(request).workflows.stats(principal(request).tenant))


WORKFLOW_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/events",
        ingest_events,
        "Activity events (seed 004), grouped into workflow sessions",
        body=EventBatch,
        reply=EventsAccepted,
        status=201,
    ),
    Route(
        "GET",
        "/workflows",
        list_workflows,
        "Learned command sequences with support, success rate and confidence",
        query=WorkflowsQuery,
        reply=Workflows,
    ),
    Route(
        "GET",
        "/workflows/next",
        next_commands,
        "The likely next commands after a sequence, with probabilities",
        query=NextQuery,
        reply=NextCommands,
    ),
    Route(
        "POST",
        "/workflows/outcome",
        report_outcome,
        "Report how a workflow session really ended (replaces the inferred outcome)",
        body=SessionOutcome,
        reply=OutcomeAccepted,
    ),
    Route(
        "GET", "/workflows/stats", workflow_stats, "Seed 004's statistics", reply=WorkflowStatsOut
    ),
)
