"""HTTP routes, derived from the table of operations (schemas/ops.py).

An operation with a service method gets the one handler below: it reads the
path's variables, then the query (GET, DELETE) or the body, calls the method
(server/web/invoke.py) and encodes its reply with the operation's status. The
few operations the web layer answers itself are in server/web/system.py.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from schemas.ops import OPS, Op
from server.web.bodies import decode, read_bytes, read_query, reply
from server.web.context import principal, services
from server.web.invoke import Plan, invoke, plans
from server.web.paths import from_match, variables
from server.web.system import SYSTEM_HANDLERS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EMPTY = b"{}"
NO_PATH: dict[str, Any] = {}


def add_routes(app: web.Application) -> None:
    """Every HTTP operation of the table; raises if one has no handler."""
    bound = plans()
    for op in OPS:
        if op.method is not None and op.path is not None:
            app.router.add_route(op.method, op.path, handler(op, bound))


def handler(op: Op, bound: dict[str, Plan]) -> Handler:
    if op.service is None:
        return SYSTEM_HANDLERS[op.name]
    return _service_handler(op, bound[op.name])


def _service_handler(op: Op, p: Plan) -> Handler:
    read = _reader(op)
    status = _status(op)
    has_path = bool(variables(op.path))

    async def handle(request: web.Request) -> web.StreamResponse:
        payload = await read(request)  # a bad body is named before an unknown id
        path = from_match(op.path, request.match_info) if has_path else NO_PATH
        result = await invoke(p, services(request), principal(request), path, payload)
        return respond(status, result)

    return handle


def _reader(op: Op) -> Callable[[web.Request], Awaitable[Any]]:
    if op.query is not None and op.method in ("GET", "DELETE"):
        query: type[BaseModel] = op.query

        async def read_query_model(request: web.Request) -> Any:
            return read_query(request, query)

        return read_query_model
    if op.body is not None:
        adapter: TypeAdapter[Any] = TypeAdapter(op.body)

        async def read_body_model(request: web.Request) -> Any:
            raw = await read_bytes(request)
            return decode(EMPTY if op.optional_body and not raw.strip() else raw, adapter)

        return read_body_model

    async def nothing(request: web.Request) -> None:
        return None

    return nothing


def _status(op: Op) -> Callable[[Any], int]:
    """The reply's status: the op's, except that a creation whose reply says it
    found the thing already there (`created: false`) is a 200."""
    fields = getattr(op.reply, "model_fields", {})
    if op.status == 201 and "created" in fields:
        return lambda result: 201 if result.created else 200
    return lambda result: op.status


def respond(status: Callable[[Any], int], result: Any) -> web.Response:
    """204 carries no body."""
    code = status(result)
    return web.Response(status=204) if code == 204 else reply(result, status=code)
