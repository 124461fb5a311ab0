"""The operations the web layer answers itself: liveness, this server's view of a
tenant, the OpenAPI document and adapter downloads (a file, not JSON)."""

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, web

import server
from schemas import Health
from schemas.ops import OPS
from server.web.bodies import reply, reply_json
from server.web.context import Services, principal, services
from server.web.openapi import openapi
from server.web.stats import collect_stats

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def health(request: web.Request) -> web.Response:
    return reply(Health(status="ok", version=server.__version__))


async def stats(request: web.Request) -> web.Response:
    return reply(await collect_stats(services(request), principal(request).tenant))


async def openapi_json(request: web.Request) -> web.Response:
    return reply_json(openapi(tuple(op for op in OPS if op.http), server.__version__))


async def download_model(request: web.Request) -> web.Response:
    version = request.match_info["version"]  # the route's regex has checked its shape
    body = await services(request).training.download(principal(request).tenant, version)
    headers = {"Content-Disposition": f'attachment; filename="{version}.tar.gz"'}
    return web.Response(body=body, content_type="application/gzip", headers=headers)


SYSTEM_HANDLERS: dict[str, Handler] = {
    "health": health,
    "stats": stats,
    "openapi": openapi_json,
    "download_model": download_model,
}


async def close_sockets_of(svc: Services, token_id: str) -> None:
    """A revoked token's open sockets close with 1008 (policy violation): their
    handshake was the only time the token was checked."""
    revoked = [c for c in svc.sockets if c.caller.token_id == token_id]
    await asyncio.gather(
        *(c.close(WSCloseCode.POLICY_VIOLATION, b"token revoked") for c in revoked)
    )
